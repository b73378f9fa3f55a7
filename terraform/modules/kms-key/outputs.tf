output "key_arn" {
  description = "ARN of the key."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "Id (UUID) of the key."
  value       = aws_kms_key.this.key_id
}

output "alias_name" {
  description = "Name of the alias, e.g. alias/irsa/dev-eu-orders."
  value       = aws_kms_alias.this.name
}

output "alias_arn" {
  description = "ARN of the alias."
  value       = aws_kms_alias.this.arn
}

output "key_policy_json" {
  description = "The key policy applied to the key."
  value       = aws_kms_key_policy.this.policy
}
