"""A catalog pair configured against its family's fake, which the catalog walk and the contract
suite share: `configure(provider, model_type)` fills the provider's own credential form with
samples, builds the endpoint as a workspace's is built (`routing.endpoint`) and picks the model
the pair is called with; `Pair.serve()` makes its fake and `Pair.adapter(fake)` aims at it."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, replace

import tests.fakes
from providers import credentials, routing, selectors
from providers.credentials import MODEL_TYPE_VARIABLE
from providers.runtime import http, registry
from providers.runtime.base import Adapter, ChatRequest, Endpoint, Message, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.schema import FormField, ProviderManifest
from tests.fakes.base import FakeServer, wav_with_text
from tests.fakes.spec import FakeSpec


def _specs() -> dict[str, FakeSpec]:
    found = {}
    for module in pkgutil.iter_modules(tests.fakes.__path__):
        spec = getattr(importlib.import_module(f"tests.fakes.{module.name}"), "SPEC", None)
        if isinstance(spec, FakeSpec):
            found[spec.family] = spec
    return found


SPECS = _specs()


@dataclass(frozen=True)
class Pair:
    manifest: ProviderManifest
    model_type: str
    model: str
    spec: FakeSpec
    endpoint: Endpoint

    def serve(self) -> FakeServer:
        return self.spec.serve(self.endpoint.credentials, {self.model_type: self.model})

    def adapter(
        self,
        fake: FakeServer,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
    ) -> Adapter:
        aimed = self.spec.aim(self.endpoint, fake.url)
        aimed = replace(aimed, timeouts=timeouts or aimed.timeouts, retry=retry or aimed.retry)
        return registry.adapter_class(self.manifest.runtime.family)(aimed, http.pool())


def _sample(form_field: FormField, provider: str, model_type: str) -> object:
    if form_field.is_secret:
        return f"sample-{provider}-{form_field.variable}-7f3a"
    if form_field.format == "integer":
        return str(form_field.default or 4096)
    if form_field.options:
        allowed = [  # the options shown for this model type
            o.value
            for o in form_field.options
            if all(c.variable != MODEL_TYPE_VARIABLE or c.value == model_type for c in o.show_on)
        ]
        return form_field.default if form_field.default in allowed else allowed[0]
    if form_field.type == "switch":
        return bool(form_field.default)
    if form_field.format == "url":
        return "https://backend.example"  # the fake's address replaces it (`FakeSpec.aim`)
    return form_field.default if form_field.default is not None else "sample"


def _model(
    manifest: ProviderManifest, model_type: str, spec: FakeSpec
) -> tuple[str, tuple[FormField, ...]]:
    """The model a pair is called with, and the form that configures it: a predefined model with
    the provider's form where there is one, else a custom model with the model form."""
    predefined = [m.model for m in manifest.models if m.model_type == model_type]
    if predefined and manifest.provider_credential_schema:
        chosen_type, chosen = routing.validation_model(manifest, {})
        model = chosen if chosen_type == model_type else predefined[0]
        return model, manifest.provider_credential_schema
    assert manifest.model_credential_schema, f"{manifest.provider} cannot configure {model_type}"
    return spec.custom_model.format(model_type=model_type), manifest.model_credential_schema.fields


def configure(provider: str, model_type: str) -> Pair:
    manifest = selectors.manifest_get(provider)
    family = manifest.runtime.family
    spec = SPECS.get(family)
    assert spec is not None, f"the {family} family has no fake exporting a SPEC"
    model, form = _model(manifest, model_type, spec)
    values = {
        f.variable: _sample(f, provider, model_type) for f in form if f.required or f.is_secret
    }
    values.update(spec.samples())
    cleaned = credentials.clean_form(form, values, model_type=model_type)
    endpoint = routing.endpoint(manifest, {**cleaned.plain, **cleaned.secrets})
    return Pair(manifest, model_type, model, spec, endpoint)


def invoke(adapter: Adapter, pair: Pair, marker: str) -> str:
    """Call the pair's model as its type (an LLM both plain and streamed); return the text the
    fake must have received from us ("" where it travels inside audio)."""
    model, model_type = pair.model, pair.model_type
    if model_type == "llm":
        request = ChatRequest(messages=(Message("user", marker),), parameters={"max_tokens": 16})
        assert adapter.chat(model, request).text
        assert accumulate(adapter.stream(model, request)).text
    elif model_type == "text-embedding":
        result = adapter.embed(model, [marker, "a second text"])
        assert len(result.vectors) == 2
        assert result.dimensions > 0
        assert result.vectors[0] != result.vectors[1]
    elif model_type == "rerank":
        hits = adapter.rerank(model, marker, ["nothing alike", f"{marker} indeed"]).hits
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
        assert hits[0].index == 1
    elif model_type == "speech2text":
        assert adapter.transcribe(model, wav_with_text(marker), "walk.wav").text
        return ""
    elif model_type == "tts":
        assert adapter.speak(model, marker, "").audio  # the model's own default voice
    return marker
