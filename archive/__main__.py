"""`python -m archive`: the archiver's command line (`archive.archiver.main`)."""

import sys

from archive.archiver import main

if __name__ == "__main__":
    sys.exit(main())
