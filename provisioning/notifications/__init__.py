"""Notifications: email (and later webhook) delivery in Celery tasks with retries.

Services call ``email.notify_*`` after a transition; the message is enqueued on commit, never by
a view and never sent inside a web request or a Terraform run.
"""
