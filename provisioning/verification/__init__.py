"""The live proof after apply, the policy-simulator path and the node role audit.

The only place besides the Terraform runner that talks to AWS at run time. ``services`` is the
entry point for the rest of the portal; ``pod`` runs in a child process without Django.
"""
