"""Every catalog provider of the OpenAI wire is wired up: configured from a sample of its own
credential form, it reaches the backend (the OpenAI fake) with its key and passes a check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from providers import credentials, routing, selectors
from providers.runtime import http, registry
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.schema import FormField
from tests.fakes.openai_server import OpenAIFake

SAMPLE_KEY = "sk-sample-key-0001"


class AnyModel(dict):
    """The fake serves whatever model it is asked for."""

    def __contains__(self, name: object) -> bool:
        return True


def _sample(form_field: FormField, url: str) -> object:
    if form_field.is_secret:
        return SAMPLE_KEY
    if form_field.format == "url":
        return url
    if form_field.format == "integer":
        return "4096"
    if form_field.options:
        return form_field.default if form_field.default is not None else form_field.options[0].value
    if form_field.type == "switch":
        return bool(form_field.default)
    return form_field.default if form_field.default is not None else "sample"


OPENAI_WIRE = [m.provider for m in selectors.catalog() if m.runtime.family == "openai_compat"]


@pytest.fixture(scope="module")
def fake():
    server = OpenAIFake(api_key=None)
    server.models = AnyModel()
    with server:
        yield server


@pytest.mark.parametrize("provider", OPENAI_WIRE)
def test_openai_wire_provider_is_wired_up(fake, provider) -> None:
    manifest = selectors.manifest_get(provider)
    customizable = not manifest.provider_credential_schema
    form = (
        manifest.model_credential_schema.fields
        if customizable
        else manifest.provider_credential_schema
    )
    model_type, model = (
        ("llm", "sample-model") if customizable else routing.validation_model(manifest, {})
    )
    values = {f.variable: _sample(f, f"{fake.url}/v1") for f in form if f.required}
    cleaned = credentials.clean_form(form, values, model_type=model_type)
    endpoint = routing.endpoint(manifest, {**cleaned.plain, **cleaned.secrets})
    adapter = registry.adapter_class(manifest.runtime.family)(endpoint, http.pool())
    assert isinstance(adapter, OpenAICompatAdapter)
    base = adapter.http.base_url
    assert base.startswith(("http://", "https://")), base
    if not base.startswith(fake.url):
        # The provider's own cloud: send the same request to the fake instead.
        adapter = type(adapter)(
            replace(
                endpoint,
                base_url=f"{fake.url}/v1",
                credentials={k: v for k, v in endpoint.credentials.items() if k != "base_url"},
            ),
            http.pool(),
        )
    adapter.validate(model, model_type)
    sent = fake.received[-1]
    assert sent.path.endswith(
        ("/chat/completions", "/embeddings", "/rerank", "/audio/transcriptions")
    )
    if "api_key" in manifest.runtime.credentials and "api_key" in endpoint.credentials:
        assert sent.header("authorization") == f"Bearer {SAMPLE_KEY}"
    for name, value in manifest.runtime.extra_headers.items():
        assert sent.header(name) == value


def test_every_family_with_an_adapter_builds_from_its_manifests() -> None:
    for manifest in selectors.catalog():
        if manifest.runtime.family in registry.ADAPTERS:
            assert registry.adapter_class(manifest.runtime.family).family == manifest.runtime.family
