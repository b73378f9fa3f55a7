"""On PostgreSQL, create the id sequence Terraform's pg backend shares between all workspaces'
state tables before any worker's first `init` does: two first `init`s at once on a fresh database
would both create it and one would fail. Terraform's own statement (``IF NOT EXISTS``) then finds
it. Not dropped on the way back: state tables may use it."""

from django.db import migrations

from provisioning.terraform.backend import PG_BACKEND_SEQUENCE_DDL


def create_sequence(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKEND_SEQUENCE_DDL)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0010_change_request_newest_index")]
    operations = [migrations.RunPython(create_sequence, migrations.RunPython.noop)]
