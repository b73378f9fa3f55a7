# A customer-managed key for one workspace. The key starts with the default key policy; the
# workspace policy (which names the service role, created after the key) replaces it through
# aws_kms_key_policy, so the key, the resources encrypted with it and the role have no cycle.
resource "aws_kms_key" "this" {
  description             = var.description
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = var.alias_name
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_kms_key_policy" "this" {
  key_id = aws_kms_key.this.key_id
  policy = var.key_policy_json
}
