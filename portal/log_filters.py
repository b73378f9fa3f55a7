"""Logging filters for the settings' LOGGING."""

from __future__ import annotations

import logging

# Answers the portal gives on purpose (refused, not found): one line each, no traceback.
EXPECTED_STATUSES = (403, 404)


class ExpectedRefusalsOneLine(logging.Filter):
    """Django logs every 403 and 404 with the exception that caused it, so each refused page
    printed a traceback; keep the line ("Forbidden (...): /path"), drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in EXPECTED_STATUSES:
            record.exc_info = None
            record.exc_text = None
        return True
