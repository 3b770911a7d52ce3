"""Environment variables read by `python -m training` (SageMaker's training-container contract)."""

SM_CHANNEL_TRAIN = "SM_CHANNEL_TRAIN"
SM_CHANNEL_VALIDATION = "SM_CHANNEL_VALIDATION"
SM_MODEL_DIR = "SM_MODEL_DIR"
SM_NUM_GPUS = "SM_NUM_GPUS"
# SageMaker syncs this folder to S3 when checkpointing is configured on the job (spot training).
SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
# Overrides the code version recorded in the artifact (otherwise: git commit, else package version).
VIGIL_CODE_VERSION = "VIGIL_CODE_VERSION"
# `python -m training.launch`: the archive bucket (training channels) and the job's IAM role.
VIGIL_ARCHIVE_BUCKET = "VIGIL_ARCHIVE_BUCKET"
VIGIL_TRAINING_ROLE_ARN = "VIGIL_TRAINING_ROLE_ARN"
