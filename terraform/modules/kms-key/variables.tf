variable "alias_name" {
  description = "Alias of the key, including the \"alias/\" prefix (e.g. alias/irsa/dev-eu-orders)."
  type        = string

  validation {
    condition     = can(regex("^alias/[a-zA-Z0-9/_-]+$", var.alias_name)) && !can(regex("^alias/aws/", var.alias_name))
    error_message = "The alias must start with \"alias/\", use only letters, digits, /, _ and -, and not use the reserved alias/aws/ prefix."
  }
}

variable "description" {
  description = "Description of the key."
  type        = string
  default     = "IRSA workspace key"
}

variable "deletion_window_in_days" {
  description = "Waiting period, in days, before a destroyed key is deleted (7-30)."
  type        = number
  default     = 7

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30 && floor(var.deletion_window_in_days) == var.deletion_window_in_days
    error_message = "The deletion window must be a whole number of days from 7 to 30."
  }
}

variable "key_policy_json" {
  description = "The key policy document (JSON). Applied by a separate aws_kms_key_policy because it names the service role, which is created after the key; the key keeps the default policy until then."
  type        = string
}

variable "tags" {
  description = "Tags for the key."
  type        = map(string)
  default     = {}
}
