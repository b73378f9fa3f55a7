# The identity policy is built exactly like provisioning/iam/policies.py build_identity_policy:
# kinds sorted, levels sorted, statements in catalog order, Resource = sorted patterns with {arn}
# replaced, then the KmsUseWorkspaceKey statement. Both read action_catalog.json.
locals {
  catalog = jsondecode(file("${path.module}/action_catalog.json"))

  # Indexing the catalog for every resource makes an unknown kind or level an error at plan time.
  resource_levels = [for r in var.resources : local.catalog.kinds[r.kind].levels[r.access]]

  kind_levels = flatten([
    for kind in sort(keys(local.catalog.kinds)) : [
      for level in sort(keys(local.catalog.kinds[kind].levels)) : {
        kind  = kind
        level = level
        arns  = [for r in var.resources : r.arn if r.kind == kind && r.access == level]
      }
    ]
  ])

  resource_statements = flatten([
    for kl in local.kind_levels : [
      for entry in local.catalog.kinds[kl.kind].levels[kl.level].statements : {
        Sid      = entry.sid
        Effect   = "Allow"
        Action   = entry.actions
        Resource = sort(flatten([for arn in kl.arns : [for p in entry.resources : replace(p, "{arn}", arn)]]))
      }
    ] if length(kl.arns) > 0
  ])

  kms_actions = sort(distinct(flatten([for lvl in local.resource_levels : lvl.kms_actions])))

  kms_statement = {
    Sid       = "KmsUseWorkspaceKey"
    Effect    = "Allow"
    Action    = local.kms_actions
    Resource  = [var.kms_key_arn]
    Condition = { StringEquals = { "kms:ViaService" = sort(distinct(var.via_services)) } }
  }

  policy_json = jsonencode({
    Version   = "2012-10-17"
    Statement = concat(local.resource_statements, [local.kms_statement])
  })

  # Exactly like build_trust_policy: only these service accounts, through this OIDC provider, for STS.
  trust_policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "IrsaServiceAccounts"
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${var.oidc_issuer}:aud" = "sts.amazonaws.com"
          "${var.oidc_issuer}:sub" = sort(var.service_account_subjects)
        }
      }
    }]
  })
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  path                 = var.role_path
  assume_role_policy   = local.trust_policy_json
  permissions_boundary = var.permissions_boundary_arn
  # Detach whatever was attached behind Terraform's back, so decommissioning never gets stuck.
  force_detach_policies = true
  tags                  = var.tags
}

resource "aws_iam_policy" "this" {
  name        = var.role_name
  path        = var.role_path
  description = "Least-privilege access of IRSA role ${var.role_name}"
  policy      = local.policy_json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  role       = aws_iam_role.this.name
  policy_arn = aws_iam_policy.this.arn
}

# The role holds exactly this one managed policy and no inline policy: anything attached or put
# outside Terraform shows up as drift in the next plan and is removed by the next apply.
resource "aws_iam_role_policy_attachments_exclusive" "this" {
  role_name   = aws_iam_role.this.name
  policy_arns = [aws_iam_policy.this.arn]
}

resource "aws_iam_role_policies_exclusive" "this" {
  role_name    = aws_iam_role.this.name
  policy_names = []
}
