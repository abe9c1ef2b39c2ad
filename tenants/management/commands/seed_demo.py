from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tenants import apikeys, services
from tenants.models import ApiKey, ApiKeyScope, Role, Tenant

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = (
        "Create (once) the demo workspace and an admin user who owns it, and register the given "
        "API key for it. Safe to run at every start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", required=True)
        parser.add_argument("--api-key", required=True, help="A well-formed key to register.")

    @transaction.atomic
    def handle(
        self, *args: Any, username: str, password: str, api_key: str, **options: Any
    ) -> None:
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(password)
            admin.save()
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = services.tenant_create(name="Demo workspace", slug=DEMO_SLUG, owner=admin)
        services.membership_set(tenant=tenant, user=admin, role=Role.OWNER)
        if not ApiKey.objects.filter(key_hash=apikeys.hash_key(api_key)).exists():
            services.api_key_create(
                tenant=tenant,
                name="Demo key",
                scopes=list(ApiKeyScope.values),
                created_by=admin,
                raw_key=api_key,
            )
        self.stdout.write(f"demo workspace: {tenant.name} ({tenant.slug}), owner {username}")
