from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import crypto, services
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Give a workspace a new RSA key pair and re-encrypt every secret it stores, in one "
        "transaction: if anything fails, nothing changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="The workspace's slug (or id).")

    def handle(self, *args: Any, tenant: str, **options: Any) -> None:
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None and tenant.isdigit():
            found = Tenant.objects.filter(pk=int(tenant)).first()
        if found is None:
            raise CommandError(f"No workspace {tenant!r}.")
        try:
            count = services.tenant_rotate_keys(tenant=found)
        except crypto.CryptoError as exc:
            raise CommandError(f"Rotation aborted, nothing changed: {exc}") from exc
        found.refresh_from_db()
        self.stdout.write(
            f"{found.slug}: new key pair (version {found.key_version}), "
            f"{count} secret(s) re-encrypted."
        )
