"""Collision-free physical names: ``PhysicalName`` claims and ``Workspace.name_scheme``.

Upgrading: existing workspaces keep their names. Every workspace that exists when this migration
runs was applied (or at least planned) with the single-dash names ``<cluster>-<service>-<resource>``
and buckets without ``S3_BUCKET_NAME_SUFFIX``; deriving the new ``--`` names for them would make
Terraform replace their tables, buckets, role and alias, deleting the data. So they get
``name_scheme`` 1 (legacy), and the specs stored with their runs (which a drift check, destroy plan,
reconciliation or verification re-renders) get ``"name_scheme": 1`` too. Workspaces created later
get 2 (the field's default). The legacy names are claimed in ``PhysicalName`` from the inventory, so
no new service can take a name a legacy workspace holds.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import provisioning.models


def _names_of(workspace) -> list[tuple[str, str]]:
    """What the workspace holds in AWS, from its inventory (names kept from the old derivation)."""
    names = []
    if "role/" in workspace.role_arn:
        names.append(("iam_role", workspace.role_arn.rsplit("/", 1)[1]))
    if workspace.kms_alias:
        names.append(("kms_alias", workspace.kms_alias))
    for key, arn in (workspace.resource_arns or {}).items():
        kind = key.split("/", 1)[0]
        name = arn.rsplit("/", 1)[1] if kind == "dynamodb_table" else arn.rsplit(":", 1)[1]
        names.append((kind, name))
    return names


LEGACY = 1


def keep_legacy_names(apps, schema_editor) -> None:
    """Every existing workspace, and every spec its runs stored, keeps the single-dash names."""
    Workspace = apps.get_model("provisioning", "Workspace")
    Run = apps.get_model("provisioning", "Run")
    Workspace.objects.update(name_scheme=LEGACY)
    for run in Run.objects.exclude(spec={}).only("pk", "spec").iterator():
        if isinstance(run.spec, dict) and "name_scheme" not in run.spec:
            Run.objects.filter(pk=run.pk).update(spec={**run.spec, "name_scheme": LEGACY})


def backfill_physical_names(apps, schema_editor) -> None:
    Workspace = apps.get_model("provisioning", "Workspace")
    PhysicalName = apps.get_model("provisioning", "PhysicalName")
    rows = [
        PhysicalName(kind=kind, name=name, workspace=workspace)
        for workspace in Workspace.objects.exclude(status="destroyed")
        for kind, name in _names_of(workspace)
    ]
    PhysicalName.objects.bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0004_review_verification_recovery"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PhysicalName",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("iam_role", "IAM role"),
                            ("kms_alias", "KMS alias"),
                            ("dynamodb_table", "DynamoDB table"),
                            ("s3_bucket", "S3 bucket"),
                        ],
                        max_length=32,
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AlterField(
            model_name="microservice",
            name="name",
            field=models.CharField(
                max_length=63, validators=[provisioning.models.validate_microservice_name]
            ),
        ),
        migrations.AddConstraint(
            model_name="microservice",
            constraint=models.UniqueConstraint(
                condition=models.Q(("decommissioned_at__isnull", True)),
                fields=("name",),
                name="microservice_name_unique_while_live",
            ),
        ),
        migrations.AddField(
            model_name="physicalname",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="physical_names",
                to="provisioning.workspace",
            ),
        ),
        migrations.AddConstraint(
            model_name="physicalname",
            constraint=models.UniqueConstraint(
                fields=("kind", "name"), name="physical_name_unique"
            ),
        ),
        migrations.AddField(
            model_name="workspace",
            name="name_scheme",
            field=models.PositiveSmallIntegerField(
                choices=[
                    (1, "Legacy (cluster-service-resource)"),
                    (2, "Current (cluster--service--resource)"),
                ],
                default=2,
            ),
        ),
        migrations.RunPython(keep_legacy_names, migrations.RunPython.noop),
        migrations.RunPython(backfill_physical_names, migrations.RunPython.noop),
    ]
