"""Writes. Views, the API and Celery tasks call these; business rules live here."""
