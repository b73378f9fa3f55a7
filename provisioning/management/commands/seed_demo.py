"""Load the demo: a team, a cluster (namespace `shop` belongs to the team), a developer, a
security reviewer and a platform admin.

Idempotent. Passwords are generated on every run and printed once: only their hashes are stored.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from provisioning.models import Cluster, Environment, NamespaceOwnership, Team
from provisioning.permissions import SECURITY_GROUP
from provisioning.services.tokens import api_token_create
from sandbox.demo import DEMO_OIDC_ID

DEMO_ACCOUNT_ID = "123456789012"
DEMO_REGION = "us-east-1"
DEMO_USERS = (
    # username, team member?, security reviewer?, staff?
    ("dev", True, False, False),
    ("reviewer", False, True, False),
    ("admin", False, False, True),
)


def demo_oidc_provider_arn(account_id: str = DEMO_ACCOUNT_ID, region: str = DEMO_REGION) -> str:
    return (
        f"arn:aws:iam::{account_id}:oidc-provider/oidc.eks.{region}.amazonaws.com/id/{DEMO_OIDC_ID}"
    )


class Command(BaseCommand):
    help = "Create the demo team, cluster and users; print their logins."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            self.stderr.write("seed_demo only runs with DEBUG=1 (it prints passwords).")
            raise SystemExit(2)
        with transaction.atomic():
            team, _ = Team.objects.get_or_create(name="payments")
            cluster, _ = Cluster.objects.get_or_create(
                name="demo",
                defaults={
                    "environment": Environment.DEV,
                    "account_id": DEMO_ACCOUNT_ID,
                    "region": DEMO_REGION,
                    "oidc_provider_arn": demo_oidc_provider_arn(),
                    "node_role_arn": f"arn:aws:iam::{DEMO_ACCOUNT_ID}:role/demo-eks-node",
                },
            )
            # The demo service runs in `shop`: no other team may put a trust subject there.
            NamespaceOwnership.objects.get_or_create(
                cluster=cluster, namespace="shop", defaults={"team": team}
            )
            security, _ = Group.objects.get_or_create(name=SECURITY_GROUP)
            logins = [self._user(name, team, security, *flags) for name, *flags in DEMO_USERS]
        self.stdout.write("Demo logins (new passwords on every start):")
        for username, password, role in logins:
            self.stdout.write(f"  {role:<22} {username:<10} {password}")
        # A fresh one-day API token for the demo developer, made as every token is (hashed,
        # audited): the key is printed here once, like the passwords.
        _, key = api_token_create(actor=User.objects.get(username="dev"), name="demo", days=1)
        self.stdout.write(f"Demo API token of dev (1 day; /profile/ lists it): {key}")

    def _user(
        self, username: str, team: Team, security: Group, member: bool, reviewer: bool, staff: bool
    ) -> tuple[str, str, str]:
        user, _ = User.objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = staff
        user.save()
        if member:
            team.members.add(user)
        if reviewer:
            user.groups.add(security)
        role = (
            "platform admin"
            if staff
            else "security reviewer"
            if reviewer
            else f"developer ({team.name})"
        )
        return username, password, role
