"""The whole catalog, pair by pair: every (provider, model type) the manifests list is configured
from a sample of the provider's own credential form, validated and invoked through the real adapter
against its family's fake, which checks the credentials as the provider does.

A pair whose family has no adapter yet is an expected failure (strict: it fails the day the
family lands without its fake being listed here); `WITHOUT_ADAPTER` may only shrink."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests.fakes
from providers import credentials, routing, selectors
from providers.credentials import MODEL_TYPE_VARIABLE
from providers.runtime import http, registry
from providers.runtime.base import ChatRequest, Message, accumulate
from providers.schema import FormField, ProviderManifest
from tests.fakes.base import wav_with_text
from tests.fakes.spec import FakeSpec

# Families the catalog lists whose adapter is still to come (issue 12).
WITHOUT_ADAPTER: set[str] = set()


def _specs() -> dict[str, FakeSpec]:
    found = {}
    for module in pkgutil.iter_modules(tests.fakes.__path__):
        spec = getattr(importlib.import_module(f"tests.fakes.{module.name}"), "SPEC", None)
        if isinstance(spec, FakeSpec):
            found[spec.family] = spec
    return found


SPECS = _specs()
PAIRS = [
    pytest.param(
        manifest.provider,
        model_type,
        id=f"{manifest.provider}-{model_type}",
        marks=[pytest.mark.xfail(strict=True, reason="no adapter yet")]
        if manifest.runtime.family in WITHOUT_ADAPTER
        else [],
    )
    for manifest in selectors.catalog()
    for model_type in manifest.supported_model_types
]


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


def _invoke(adapter, model: str, model_type: str, provider: str) -> str:
    """Call the model as its type; return the text the fake must have received from us."""
    marker = f"walk {provider} {model_type}"
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
        return ""  # the marker travels inside the audio
    elif model_type == "tts":
        assert adapter.speak(model, marker, "").audio  # the model's own default voice
    return marker


@pytest.mark.parametrize(("provider", "model_type"), PAIRS)
def test_every_pair_validates_and_invokes_against_its_fake(provider, model_type) -> None:
    manifest = selectors.manifest_get(provider)
    family = manifest.runtime.family
    registry.adapter_class(family)  # raises for a family without an adapter
    spec = SPECS.get(family)
    assert spec is not None, f"the {family} family has no fake exporting a SPEC"
    assert manifest.runtime.checked_by == spec.client, "the manifest names the fake's checker"

    model, form = _model(manifest, model_type, spec)
    values = {
        f.variable: _sample(f, provider, model_type) for f in form if f.required or f.is_secret
    }
    values.update(spec.samples())
    cleaned = credentials.clean_form(form, values, model_type=model_type)
    endpoint = routing.endpoint(manifest, {**cleaned.plain, **cleaned.secrets})
    with spec.serve(endpoint.credentials, {model_type: model}) as fake:
        adapter = registry.adapter_class(family)(spec.aim(endpoint, fake.url), http.pool())
        adapter.validate(model, model_type)
        marker = _invoke(adapter, model, model_type, provider)
        assert fake.received, "the fake heard nothing"
        if marker:
            assert any(marker.encode() in r.body for r in fake.received), "our words never arrived"


def test_families_waiting_for_an_adapter_really_have_none() -> None:
    catalog_families = {m.runtime.family for m in selectors.catalog()}
    assert catalog_families >= WITHOUT_ADAPTER
    assert not WITHOUT_ADAPTER & set(registry.ADAPTERS)
