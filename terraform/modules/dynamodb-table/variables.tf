variable "name" {
  description = "Physical table name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.name))
    error_message = "A DynamoDB table name is 3-255 characters: letters, digits, _, - and . only."
  }
}

variable "hash_key" {
  description = "Partition key: attribute name and type (S, N or B)."
  type = object({
    name = string
    type = string
  })

  validation {
    condition     = contains(["S", "N", "B"], var.hash_key.type)
    error_message = "The partition key type must be S, N or B."
  }
}

variable "range_key" {
  description = "Sort key: attribute name and type (S, N or B), or null for none."
  type = object({
    name = string
    type = string
  })
  default = null

  validation {
    condition     = try(contains(["S", "N", "B"], var.range_key.type), var.range_key == null)
    error_message = "The sort key type must be S, N or B."
  }
}

variable "billing_mode" {
  description = "PAY_PER_REQUEST or PROVISIONED."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "The billing mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "read_capacity" {
  description = "Read capacity units; only for PROVISIONED billing (null otherwise)."
  type        = number
  default     = null
}

variable "write_capacity" {
  description = "Write capacity units; only for PROVISIONED billing (null otherwise)."
  type        = number
  default     = null
}

variable "kms_key_arn" {
  description = "ARN of the workspace's customer-managed KMS key that encrypts the table."
  type        = string
}

variable "tags" {
  description = "Tags for the table."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection: the table cannot be deleted while it is on."
  type        = bool
  default     = false
}

variable "point_in_time_recovery" {
  description = "DynamoDB point-in-time recovery (continuous backups) for the table."
  type        = bool
  default     = true
}
