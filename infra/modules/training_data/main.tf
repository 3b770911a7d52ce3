# The archive bucket: clips (training data), alert clips, alert snapshots, manifests and model artifacts.
#
# Layout (prefixes drive both the lifecycle and the IAM policies of the other modules):
#   clips/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4   normal footage sampled on a schedule
#   alerts/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4  clips around an alert (kept longer)
#   snapshots/...                                          JPEG of each alerting frame
#   manifests/...                                          JSON Lines manifests (Ground Truth style)
#   feedback/camera=<id>/<alert_id>.json                   an operator's verdict on an alert (labels)
#   tmp/<uuid>.mp4                                         uploads before their copy into place
#   models/...                                             model.tar.gz written by training jobs
#   checkpoints/...                                        training checkpoints (spot restarts)
#   data-capture/...                                       SageMaker endpoint data capture
# Alert clips are told apart by prefix, not by tag: S3 lifecycle filters cannot exclude a tag, so a
# tagged alert clip under clips/ would still be expired by the clips/ rule.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  partition   = data.aws_partition.current.partition
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-archive-${local.account_id}-${data.aws_region.current.region}")
  days        = var.lifecycle_days
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy: "*" as resource means this key only, and the account statement delegates to IAM (AWS's default key policy).
  #checkov:skip=CKV_AWS_111:A key policy: "*" as resource means this key only; write use is granted to the account's IAM policies and the named service.
  #checkov:skip=CKV_AWS_356:A key policy: "*" as resource means this key only (a key policy cannot name the key's own ARN before it exists).
  statement {
    sid = "AccountAdministration"
    actions = [
      "kms:CancelKeyDeletion", "kms:Create*", "kms:Decrypt", "kms:Delete*", "kms:Describe*", "kms:Disable*",
      "kms:Enable*", "kms:Encrypt", "kms:GenerateDataKey*", "kms:Get*", "kms:List*", "kms:Put*",
      "kms:ReEncrypt*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
      "kms:TagResource", "kms:UntagResource", "kms:Update*",
    ]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} training data: archive bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-archive"
  target_key_id = aws_kms_key.this.key_id
}

# --- the two buckets: archive (data) and logs (its server access logs) -------------------------------

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV2_AWS_62:No consumer of object events: the manifests index the archive's content, and nothing reacts to single objects.
  #checkov:skip=CKV_AWS_144:Not replicated to another region on purpose: footage of people stays in the deployment's region (data residency); versioning and lifecycle protect it.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only into an SSE-S3 target: with SSE-KMS by default the logs never arrive. The bucket holds request metadata, never footage (issue 16 F4).
  #checkov:skip=CKV2_AWS_62:No consumer of object events: the manifests index the access-log bucket's content, and nothing reacts to single objects.
  #checkov:skip=CKV_AWS_144:Not replicated to another region on purpose: footage of people stays in the deployment's region (data residency); versioning and lifecycle protect it.
  bucket        = "${local.bucket_name}-logs"
  force_destroy = var.force_destroy
  tags          = var.tags
}

locals {
  buckets = {
    archive = aws_s3_bucket.archive
    logs    = aws_s3_bucket.logs
  }
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs at all
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true # one data key per bucket and hour, not one KMS call per object
  }
}

# S3 server access logging delivers only into a target bucket whose default encryption is SSE-S3: with
# SSE-KMS as the default the logs silently never arrive (AWS: "server access logging ... target bucket
# ... SSE-KMS is not supported"). The access logs hold request metadata, never footage.
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.archive.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${aws_s3_bucket.archive.id}/"
}

# --- bucket policies: TLS only; the log bucket also admits the S3 logging service ---------------------

data "aws_iam_policy_document" "archive" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"] # a Deny on every S3 action: the one place a service wildcard belongs
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogging"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.archive.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.archive.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- lifecycle ---------------------------------------------------------------------------------------

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "normal-clips"
    status = "Enabled"
    filter {
      prefix = "clips/"
    }
    transition {
      days          = local.days.clip_transition
      storage_class = var.clip_storage_class
    }
    expiration {
      days = local.days.clip_expiration
    }
  }

  rule {
    id     = "alert-clips"
    status = "Enabled"
    filter {
      prefix = "alerts/"
    }
    transition {
      days          = local.days.alert_clip_transition
      storage_class = var.clip_storage_class
    }
    expiration {
      days = local.days.alert_clip_expiration
    }
  }

  rule {
    id     = "snapshots"
    status = "Enabled"
    filter {
      prefix = "snapshots/"
    }
    expiration {
      days = local.days.snapshot_expiration
    }
  }

  # A clip is uploaded to tmp/ and copied into place; a crash in between orphans the temporary.
  rule {
    id     = "temporary-uploads"
    status = "Enabled"
    filter {
      prefix = "tmp/"
    }
    expiration {
      days = 1
    }
  }

  rule {
    id     = "noncurrent-versions-and-uploads"
    status = "Enabled"
    filter {} # the whole bucket
    noncurrent_version_expiration {
      noncurrent_days = local.days.noncurrent_version_expiration
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = local.days.access_log_expiration
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
