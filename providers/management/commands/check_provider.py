from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config import errors
from providers import selectors, validation
from providers.models import CustomModel, ProviderCredential, ValidationJob
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Check a workspace's provider setup now, in this process, and print what the backend "
        "said: the active credential, or every custom model of the provider. The verdict is "
        "recorded as by a validation job."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="The workspace's slug.")
        parser.add_argument("provider", help="The provider key, e.g. openai or xinference.")

    def handle(self, *args: Any, tenant: str, provider: str, **options: Any) -> None:
        workspace = Tenant.objects.filter(slug=tenant).first()
        if workspace is None:
            raise CommandError(f"No workspace {tenant!r}.")
        try:
            manifest = selectors.manifest_get(provider)
        except errors.NotFound as exc:
            raise CommandError(exc.message) from exc
        targets: list[Any] = list(
            ProviderCredential.objects.filter(tenant=workspace, provider=provider, is_active=True)
        )
        targets += list(CustomModel.objects.filter(tenant=workspace, provider=provider))
        if not targets:
            raise CommandError(f"{manifest.label.en_US} is not configured in {workspace.slug}.")
        failures = 0
        for target in targets:
            label = (
                f"credential {target.name!r}"
                if isinstance(target, ProviderCredential)
                else f"{target.model_type} model {target.model!r}"
            )
            try:
                job = validation.validation_create(target=target)
            except errors.ServiceError as exc:
                raise CommandError(exc.message) from exc
            validation.validation_run(job_id=job.pk)
            job = ValidationJob.objects.get(pk=job.pk)
            if job.valid:
                details = ", ".join(f"{k}={v}" for k, v in sorted(job.details.items()))
                self.stdout.write(
                    f"{provider} {label} with {job.model}: valid ({job.latency_ms} ms) {details}"
                )
            else:
                failures += 1
                self.stdout.write(
                    f"{provider} {label} with {job.model}: INVALID "
                    f"[{job.error_code}] {job.error_message}"
                )
        if failures:
            raise CommandError(f"{failures} of {len(targets)} check(s) failed.")
