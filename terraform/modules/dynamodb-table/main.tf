locals {
  # Only key attributes are declared: DynamoDB refuses attribute definitions no key uses.
  key_attributes = var.range_key == null ? [var.hash_key] : [var.hash_key, var.range_key]
  provisioned    = var.billing_mode == "PROVISIONED"
}

resource "aws_dynamodb_table" "this" {
  name           = var.name
  billing_mode   = var.billing_mode
  hash_key       = var.hash_key.name
  range_key      = try(var.range_key.name, null)
  read_capacity  = local.provisioned ? var.read_capacity : null
  write_capacity = local.provisioned ? var.write_capacity : null

  dynamic "attribute" {
    for_each = local.key_attributes
    content {
      name = attribute.value.name
      type = attribute.value.type
    }
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # DynamoDB refuses to delete a protected table; the portal refuses its destroy plan first.
  deletion_protection_enabled = var.deletion_protection

  # Continuous backups (restore to any second of the last 35 days); on by default in prod.
  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  tags = var.tags
}
