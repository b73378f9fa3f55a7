"""The REST API: the same services and selectors as the pages, over token or session auth."""
