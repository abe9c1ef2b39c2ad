from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from config import errors
from tenants import services
from tenants.models import ApiKeyScope


class Command(BaseCommand):
    help = (
        "Create a workspace, its owner (if new) and a first API key, printed as `api_key: <key>`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Workspace name, e.g. 'Acme'.")
        parser.add_argument("--owner-email", required=True, help="Owner's e-mail (also the login).")
        parser.add_argument("--slug", default="", help="URL slug; made from the name by default.")

    @transaction.atomic
    def handle(self, *args: Any, name: str, owner_email: str, slug: str, **options: Any) -> None:
        User = get_user_model()
        owner = User.objects.filter(email__iexact=owner_email).first()
        created_owner = owner is None
        if owner is None:
            owner = User.objects.create_user(username=owner_email, email=owner_email)
        try:
            tenant = services.tenant_create(name=name, slug=slug, owner=owner)
        except errors.InvalidInput as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        _, raw_key = services.api_key_create(
            tenant=tenant, name="First key", scopes=list(ApiKeyScope.values), created_by=owner
        )
        self.stdout.write(f"tenant: {tenant.slug}")
        self.stdout.write(f"owner: {owner.get_username()}" + (" (new)" if created_owner else ""))
        if created_owner:
            self.stdout.write(
                f"The owner has no password yet: manage.py changepassword {owner.get_username()}"
            )
        self.stdout.write(f"api_key: {raw_key}")
