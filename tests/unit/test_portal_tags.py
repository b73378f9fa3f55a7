"""The templates' display helpers: pure functions."""

from datetime import timedelta
from types import SimpleNamespace

from provisioning.templatetags.portal import age, run_outcome, split_init

INIT = "$ terraform init -input=false\nInitializing...\n"


def test_init_is_folded_only_once_a_later_command_started():
    assert split_init(INIT) == ("", INIT)
    log = INIT + "$ terraform plan\nPlan: 1 to add\n"
    assert split_init(log) == (INIT, "$ terraform plan\nPlan: 1 to add\n")
    assert split_init("$ terraform apply\n") == ("", "$ terraform apply\n")


def test_age_in_words():
    assert age(timedelta(minutes=25)) == "25 min"
    assert age(timedelta(hours=3, minutes=4)) == "3 h 4 min"
    assert age(timedelta(days=2, hours=5)) == "2 d 5 h"
    assert age(None) == "—"


def test_run_outcome_without_exit_codes():
    def run(**kw):
        return SimpleNamespace(**{"status": "succeeded", "kind": "plan", "has_changes": None, **kw})

    assert run_outcome(run(has_changes=True)) == "Succeeded · changes to apply"
    assert run_outcome(run(has_changes=False)) == "Succeeded · no changes"
    assert run_outcome(run(kind="drift", has_changes=True)) == "Succeeded · drift found"
    assert run_outcome(run(kind="apply")) == "Succeeded"
    assert run_outcome(run(status="interrupted", kind="apply")).startswith("Interrupted")
