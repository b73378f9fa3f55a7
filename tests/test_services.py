import pytest

from provisioning.iam.spec import SpecError
from provisioning.models import AuditEvent, ChangeRequest, Microservice
from tests.factories import RESOURCES
from tests.factories import register_orders as register


def test_register_creates_the_service_a_draft_change_and_an_audit_event(developer, team, cluster):
    change = register(developer, team, cluster)
    assert change.status == "draft" and change.kind == "create"
    assert change.spec["clusters"] == ["demo"]
    assert Microservice.objects.get(name="orders").team == team
    event = AuditEvent.objects.get(action="microservice.registered")
    assert event.actor == developer and event.data["clusters"] == ["demo"]


def test_invalid_spec_writes_nothing(developer, team, cluster):
    bad = [*RESOURCES, {"kind": "s3_bucket", "name": "x" * 60, "access": "read"}]
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, resources=bad)
    assert "resources[2].name" in exc.value.errors
    assert not Microservice.objects.exists()
    assert not ChangeRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_duplicate_name_is_a_clear_error(developer, team, cluster):
    register(developer, team, cluster)
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster)
    assert "already exists" in exc.value.errors["microservice"][0]


def test_needs_a_cluster_and_a_justification(developer, team, cluster):
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, clusters=[])
    assert "clusters" in exc.value.errors
    with pytest.raises(SpecError) as exc:
        register(developer, team, cluster, justification="  ")
    assert "justification" in exc.value.errors


def test_only_team_members_register_services(outsider, team, cluster):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="Only members of team payments"):
        register(outsider, team, cluster)
    assert not Microservice.objects.exists()


def test_a_second_open_change_request_is_a_clear_error(developer, team, cluster):
    from provisioning.services.changes import TransitionError, change_request_create

    change = register(developer, team, cluster)
    with pytest.raises(TransitionError, match=f"already has an open change request #{change.pk}"):
        change_request_create(
            actor=developer,
            microservice=change.microservice,
            kind="change",
            spec=change.spec,
            justification="more",
        )


def test_malformed_change_spec_is_a_field_error(developer, team, cluster):
    from provisioning.services.changes import change_request_cancel, change_request_create

    change = register(developer, team, cluster)
    change_request_cancel(actor=developer, change_request=change)
    with pytest.raises(SpecError) as exc:
        change_request_create(
            actor=developer,
            microservice=change.microservice,
            kind="change",
            spec={"resources": ["x"]},
            justification="more",
        )
    assert set(exc.value.errors) == {"namespace", "service_accounts", "resources", "clusters"}


def test_approval_refuses_plans_other_than_the_ones_shown(developer, reviewer, team, cluster):
    from provisioning.models import ChangeStatus, Run, Workspace
    from provisioning.services.changes import TransitionError, change_request_approve

    change = register(developer, team, cluster)
    workspace = Workspace.objects.create(microservice=change.microservice, cluster=cluster)
    plan = Run.objects.create(
        workspace=workspace,
        change_request=change,
        kind="plan",
        status="succeeded",
        plan_sha256="a" * 64,
        has_changes=False,
    )
    ChangeRequest.objects.filter(pk=change.pk).update(status=ChangeStatus.PLANNED)
    change.refresh_from_db()
    with pytest.raises(TransitionError, match="changed since they were shown"):
        change_request_approve(
            actor=reviewer, change_request=change, shown_plan_hashes={str(plan.pk): "b" * 64}
        )
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.PLANNED
    change.refresh_from_db()
    review = change_request_approve(
        actor=reviewer, change_request=change, shown_plan_hashes={str(plan.pk): "a" * 64}
    )
    assert review.plan_hashes == {str(plan.pk): "a" * 64}
    # No plan changes anything, so there is nothing to apply: the request is done.
    assert ChangeRequest.objects.get(pk=change.pk).status == ChangeStatus.APPLIED


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_proposals_make_one_request_and_one_clear_error(developer, team, cluster):
    """Whichever catches it (the service's check or the database's one-open-request
    constraint), the loser gets a TransitionError, never an IntegrityError (a 500)."""
    import threading

    from django.db import connection

    from provisioning.services.changes import change_request_cancel, change_request_create

    first = register(developer, team, cluster)
    change_request_cancel(actor=developer, change_request=first)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def propose() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                change_request_create(
                    actor=developer,
                    microservice=first.microservice,
                    kind="change",
                    spec=first.spec,
                    justification="concurrent",
                )
            )
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=propose) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    from provisioning.services.changes import TransitionError

    created = [o for o in outcomes if isinstance(o, ChangeRequest)]
    refused = [o for o in outcomes if isinstance(o, TransitionError)]
    assert len(created) == 1 and len(refused) == 1, outcomes
    assert "already has an open change request" in str(refused[0])
    assert ChangeRequest.objects.filter(justification="concurrent").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_make_one_review_and_one_conflict(
    developer, reviewer, team, cluster
):
    """Both reviewers may decide (no 403); the one whose conditional UPDATE loses learns the
    request's current state (a TransitionError: the API's 409)."""
    import threading

    from django.contrib.auth.models import Group
    from django.db import connection

    from provisioning.models import Review
    from provisioning.permissions import SECURITY_GROUP
    from provisioning.services.changes import TransitionError, change_request_approve
    from tests.factories import UserFactory
    from tests.test_review import planned_create

    second = UserFactory(username="sam")
    second.groups.add(Group.objects.get(name=SECURITY_GROUP))
    change = planned_create(developer, team, cluster)
    hashes = {str(p.pk): p.plan_sha256 for p in change.runs.filter(kind="plan")}
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def approve(actor) -> None:
        try:
            mine = ChangeRequest.objects.get(pk=change.pk)
            barrier.wait(timeout=10)
            outcomes.append(
                change_request_approve(actor=actor, change_request=mine, shown_plan_hashes=hashes)
            )
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in (reviewer, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    refused = [o for o in outcomes if isinstance(o, TransitionError)]
    assert len([o for o in outcomes if isinstance(o, Review)]) == 1 and len(refused) == 1, outcomes
    assert "it cannot become Approved" in str(refused[0])
    assert Review.objects.filter(change_request=change).count() == 1
