"""Change-request notifications: who is mailed, with which link, and opt-outs honoured."""

import pytest
from django.urls import reverse

from provisioning import models as m
from provisioning.notifications import changes as notify
from provisioning.notifications import tasks
from provisioning.notifications.prefs import NotificationOptOut, NotifyEvent
from provisioning.services.changes import change_request_reject

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail_now(monkeypatch):
    """Deliver through the real task, synchronously, into the locmem outbox."""
    monkeypatch.setattr(tasks.send_email, "delay", lambda *a: tasks.send_email.apply(args=a).get())


@pytest.fixture
def planned(developer, reviewer, microservice):
    developer.email, reviewer.email = "alice@example.com", "rita@example.com"
    developer.save()
    reviewer.save()
    return m.ChangeRequest.objects.create(
        microservice=microservice,
        kind=m.ChangeKind.CHANGE,
        status=m.ChangeStatus.PLANNED,
        spec={},
        justification="needs the invoices bucket",
        created_by=developer,
    )


def test_planned_mails_requester_and_reviewers_with_the_link(
    planned, mail_now, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify_change_request_status(change=planned, status=m.ChangeStatus.PLANNED)
    by_recipient = {mail.to[0]: mail for mail in mailoutbox}
    assert set(by_recipient) == {"alice@example.com", "rita@example.com"}
    link = f"http://127.0.0.1:8000{reverse('change-request-detail', args=[planned.pk])}"
    assert "Review waiting" in by_recipient["rita@example.com"].subject
    assert link in by_recipient["rita@example.com"].body
    assert "needs the invoices bucket" in by_recipient["rita@example.com"].body
    assert "was planned" in by_recipient["alice@example.com"].subject
    assert link in by_recipient["alice@example.com"].body


def test_rejection_through_the_service_mails_the_comment(
    planned, reviewer, mail_now, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        change_request_reject(actor=reviewer, change_request=planned, comment="Read only, please.")
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"] and "was rejected" in mail.subject
    assert "Read only, please." in mail.body
    assert reverse("change-request-detail", args=[planned.pk]) in mail.body


@pytest.mark.parametrize(
    ("status", "words"),
    [("approved", "was approved"), ("applied", "was applied"), ("failed", "failed")],
)
def test_requester_hears_of_each_outcome(
    planned, status, words, mail_now, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify_change_request_status(change=planned, status=status)
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"] and words in mail.subject


def test_opt_outs_are_honoured(
    planned, developer, reviewer, mail_now, mailoutbox, django_capture_on_commit_callbacks
):
    NotificationOptOut.objects.create(user=developer, event=NotifyEvent.PLANNED)
    NotificationOptOut.objects.create(user=reviewer, event=NotifyEvent.REVIEW_WAITING)
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify_change_request_status(change=planned, status=m.ChangeStatus.PLANNED)
    assert mailoutbox == []


def test_a_reviewer_is_not_asked_to_review_their_own_request(
    planned, reviewer, mail_now, mailoutbox, django_capture_on_commit_callbacks
):
    m.ChangeRequest.objects.filter(pk=planned.pk).update(created_by=reviewer)
    planned.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify_change_request_status(change=planned, status=m.ChangeStatus.PLANNED)
    assert [mail.to for mail in mailoutbox] == [["rita@example.com"]]
    assert "Review waiting" not in mailoutbox[0].subject


def test_slack_webhook_gets_the_message_when_set(
    planned, settings, monkeypatch, mail_now, django_capture_on_commit_callbacks
):
    posted = []
    monkeypatch.setattr(tasks.post_slack, "delay", posted.append)
    settings.NOTIFY_SLACK_WEBHOOK_URL = "https://hooks.example.com/services/T/B/x"
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify_change_request_status(change=planned, status=m.ChangeStatus.APPLIED)
    assert len(posted) == 1 and "was applied" in posted[0]


class TestPreferencesPage:
    url = reverse("notification-preferences")

    def test_unchecking_opts_out_and_checking_opts_back_in(self, client, developer):
        client.force_login(developer)
        page = client.get(self.url).content.decode()
        assert 'value="planned" checked' in page
        assert 'value="review_waiting"' not in page  # developers review nothing
        response = client.post(self.url, {"receive": ["approved", "applied"]})
        assert response.status_code == 302
        assert notify.notification_opt_outs(user=developer) == {
            "planned",
            "rejected",
            "failed",
            "review_waiting",
        }
        client.post(self.url, {"receive": [*NotifyEvent.values, "bogus"]})
        assert notify.notification_opt_outs(user=developer) == set()

    def test_requires_login(self, client):
        assert client.get(self.url).status_code == 302
