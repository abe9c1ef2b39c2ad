from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Model providers"

    def ready(self) -> None:
        # Parse and validate every manifest once at start-up: a broken manifest stops the
        # process here, with every problem listed, instead of failing a request later.
        from providers import selectors, signals

        selectors.catalog()
        signals.connect()
