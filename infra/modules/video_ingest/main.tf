# One Kinesis video stream per camera, encrypted with this module's customer managed key.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

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
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} video ingest: Kinesis video streams"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-video"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_kinesis_video_stream" "this" {
  for_each = var.cameras

  name                    = "${var.name_prefix}-${each.key}"
  data_retention_in_hours = each.value.retention_hours
  media_type              = each.value.media_type
  kms_key_id              = aws_kms_key.this.arn
  tags                    = merge(var.tags, { Camera = each.key, Site = each.value.site })
}
