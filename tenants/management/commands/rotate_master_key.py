from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import crypto, services


class Command(BaseCommand):
    help = (
        "Re-wrap every workspace's private key under the first key of MASTER_KEYS. To rotate: put "
        "a new key first in MASTER_KEYS (keep the old ones after it), run this, then drop the old "
        "ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate", action="store_true", help="Only print a new master key and exit."
        )

    def handle(self, *args: Any, generate: bool, **options: Any) -> None:
        if generate:
            self.stdout.write(crypto.generate_master_key())
            return
        try:
            count = services.master_key_rotate()
        except crypto.CryptoError as exc:
            raise CommandError(f"Rotation aborted, nothing changed: {exc}") from exc
        self.stdout.write(f"{count} workspace key(s) re-wrapped under the first master key.")
