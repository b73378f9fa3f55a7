"""Notifications: email, Slack-compatible posts and webhooks, delivered by Celery tasks with
retries, never sent inside a web request or a Terraform run.

Services call ``changes.notify_*`` / ``email.notify_*`` at a transition; those messages are built
and enqueued on commit. Webhook deliveries are an outbox (``webhooks``): written in the
transition's own transaction, enqueued on commit, swept again by beat if that never happened.
"""
