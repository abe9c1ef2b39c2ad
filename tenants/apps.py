from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Workspaces")

    def ready(self) -> None:
        # Bind the project's Celery app in every Django process (web, tests, commands), so that
        # tasks queued from a view go to the configured broker, not Celery's default.
        from config import celery  # noqa: F401
        from tenants import (
            openapi,  # noqa: F401 - registers the auth schemes with the schema
            signals,
        )

        signals.connect()
