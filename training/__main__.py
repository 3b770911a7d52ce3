"""`python -m training --train PATH --model-dir DIR ...` (see `training.train.get_args_parser`)."""

import sys

from training.train import cli

sys.exit(cli())
