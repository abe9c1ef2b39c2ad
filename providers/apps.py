from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = _("Model providers")

    def ready(self) -> None:
        # Parse and validate every manifest once at start-up: a broken manifest stops the
        # process here, with every problem listed, instead of failing a request later.
        from providers import selectors, signals

        selectors.catalog()
        signals.connect()
