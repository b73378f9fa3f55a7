variable "role_name" {
  description = "Name of the IAM role (and of its managed policy)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "An IAM role name is 1-64 characters: letters, digits and +=,.@_- only."
  }
}

variable "role_path" {
  description = "IAM path of the role and its policy; the worker may only create roles under it."
  type        = string
  default     = "/irsa/"

  validation {
    condition     = can(regex("^/([a-zA-Z0-9_-]+/)*$", var.role_path))
    error_message = "The path must start and end with / (e.g. /irsa/)."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of the managed policy attached as the role's permissions boundary; null for none."
  type        = string
  default     = null
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (the trust policy's Federated principal)."
  type        = string
}

variable "oidc_issuer" {
  description = "OIDC issuer without https://, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC."
  type        = string

  validation {
    condition     = !can(regex("^https?://", var.oidc_issuer)) && !can(regex("/$", var.oidc_issuer))
    error_message = "Give the issuer without the https:// scheme and without a trailing slash."
  }
}

variable "service_account_subjects" {
  description = "Subjects allowed to assume the role: system:serviceaccount:<namespace>:<name>."
  type        = list(string)

  validation {
    condition = length(var.service_account_subjects) > 0 && alltrue([
      for s in var.service_account_subjects : can(regex("^system:serviceaccount:[a-z0-9-]+:[a-z0-9-]+$", s))
    ])
    error_message = "List at least one subject, each system:serviceaccount:<namespace>:<name> without wildcards."
  }
}

variable "resources" {
  description = "Resources the role uses: kind and access level from the action catalog, and the resource's ARN."
  type = list(object({
    kind   = string
    arn    = string
    access = string
  }))

  validation {
    condition     = length(var.resources) > 0
    error_message = "List at least one resource."
  }
}

variable "kms_key_arn" {
  description = "ARN of the workspace's KMS key; the role may use only this key."
  type        = string
}

variable "via_services" {
  description = "kms:ViaService values, e.g. dynamodb.eu-west-1.amazonaws.com."
  type        = list(string)

  validation {
    condition     = length(var.via_services) > 0
    error_message = "List at least one service endpoint for kms:ViaService."
  }
}

variable "tags" {
  description = "Tags for the role and its policy."
  type        = map(string)
  default     = {}
}
