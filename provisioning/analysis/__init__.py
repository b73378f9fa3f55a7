"""Review analysis, pure: grants from policies, grant diff, lint rules, evaluator, access matrix.

Takes policies and specs, returns data; no ORM, no I/O. The review page, the API,
``render_policies``, ``lint_policy`` and the live verification all use it.
"""
