"""On PostgreSQL the database itself refuses UPDATE and DELETE on audit events, so the trail stays
append-only even for code (or people) that bypass the model."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION provisioning_auditevent_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER provisioning_auditevent_append_only
  BEFORE UPDATE OR DELETE ON provisioning_auditevent
  FOR EACH ROW EXECUTE FUNCTION provisioning_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS provisioning_auditevent_append_only ON provisioning_auditevent;
DROP FUNCTION IF EXISTS provisioning_auditevent_append_only();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]
    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
