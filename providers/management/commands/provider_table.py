from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers import provider_table


class Command(BaseCommand):
    help = (
        "Print the README's provider table (from the built-in catalog and the adapter registry), "
        "or with --write, put it into README.md between its markers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--write", action="store_true", help="Update README.md in place.")

    def handle(self, *args: Any, write: bool, **options: Any) -> None:
        if not write:
            self.stdout.write(provider_table.render())
            return
        readme = provider_table.README
        readme.write_text(provider_table.replaced(readme.read_text(encoding="utf-8")), "utf-8")
        self.stdout.write(f"Wrote the provider table into {readme}.")
