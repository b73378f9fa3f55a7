variable "name" {
  description = "Physical bucket name (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "A bucket name is 3-63 characters: lowercase letters, digits, . and -, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "ARN of the workspace's customer-managed KMS key used as the default encryption key."
  type        = string
}

variable "versioning" {
  description = "true: versioning Enabled; false: Suspended."
  type        = bool
  default     = true
}

variable "deny_insecure_transport" {
  description = "Attach a bucket policy that denies every request not sent over TLS. Keep true against AWS; only a local sandbox that cannot evaluate the Bool condition turns it off."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Allow destroying a bucket that still holds objects (their data is lost)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
