output "role_arn" {
  description = "ARN of the role (the ServiceAccount's eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "policy_arn" {
  description = "ARN of the role's managed identity policy."
  value       = aws_iam_policy.this.arn
}

output "policy_json" {
  description = "The identity policy document as built (equal to build_identity_policy after JSON parsing)."
  value       = local.policy_json
}

output "trust_policy_json" {
  description = "The trust policy document as built (equal to build_trust_policy after JSON parsing)."
  value       = local.trust_policy_json
}

output "kms_actions" {
  description = "Sorted union of the catalog's kms_actions for the resources (the key policy's usage actions)."
  value       = local.kms_actions
}
