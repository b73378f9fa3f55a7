"""``irsa``: the IRSA Portal from a pipeline, over its REST API only (no Django import).

The URL and token come from the environment (``IRSA_URL``, ``IRSA_TOKEN``); ``--json`` prints
the API's answers as they are, for scripts.
"""
