"""The settings module refuses to start insecurely and explains what to set."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def import_settings(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import portal.settings"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_secret_key_when_not_debug():
    result = import_settings({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_uses_a_throwaway_key_and_sqlite():
    code = (
        "import portal.settings as s; print(s.SECRET_KEY.startswith('dev-only'), "
        "s.DATABASES['default']['ENGINE'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "1"},
        timeout=60,
    )
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3"]


def test_bad_boolean_is_a_clear_error():
    result = import_settings({"DEBUG": "maybe"})
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_every_beat_entry_names_a_task_the_worker_knows():
    from django.conf import settings

    import provisioning.tasks  # noqa: F401 - what the worker imports (autodiscovery)
    from portal.celery import app

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - set(app.tasks) == set()
    assert {
        "notifications.redispatch_webhooks",
        "provisioning.purge_idempotency_records",
    } <= scheduled
