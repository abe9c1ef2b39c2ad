"""Every form the catalog offers can be saved: for every manifest, every form (the provider's, and
the model form for each model type it supports), filled with each field's default, its first
offered option and plausible values, is accepted; and so is every option a select or radio offers
for that model type. A form that shows a choice must never refuse it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from config import errors
from providers import credentials, selectors
from providers.schema import MODEL_TYPE_VARIABLE, FormField, ShowOn

PLAUSIBLE_TEXT = "plausible-value-0123456789"


def _forms() -> Iterator[tuple[str, str | None, tuple[FormField, ...]]]:
    for manifest in selectors.catalog():
        if manifest.provider_credential_schema:
            yield manifest.provider, None, manifest.provider_credential_schema
        if manifest.model_credential_schema is not None:
            for model_type in manifest.supported_model_types:
                yield manifest.provider, model_type, manifest.model_credential_schema.fields


FORMS = list(_forms())


def _holds(condition: ShowOn, values: Mapping[str, Any], model_type: str | None) -> bool:
    if condition.variable == MODEL_TYPE_VARIABLE:
        return condition.value == model_type
    value = values.get(condition.variable)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return value == condition.value


def _offered(form_field: FormField, values: Mapping[str, Any], model_type: str | None) -> list:
    """The options a user is shown for this field, as the set-up dialog filters them."""
    return [
        option.value
        for option in form_field.options
        if all(_holds(c, values, model_type) for c in option.show_on)
    ]


def _plausible(form_field: FormField) -> Any:
    if form_field.default is not None:
        return form_field.default
    if form_field.type == "switch":
        return False
    if form_field.format == "url":
        return "https://models.example.com/v1"
    if form_field.format == "seconds":
        return "30"
    if form_field.format == "integer":
        return str(form_field.min if form_field.min is not None else 1)
    if form_field.type == "secret-input":
        return "sk-plausible-0123456789abcdef"[: form_field.max_length]
    return PLAUSIBLE_TEXT[: form_field.max_length]


def _filled(fields: Sequence[FormField], model_type: str | None, **chosen: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for form_field in fields:
        if form_field.variable in chosen:
            values[form_field.variable] = chosen[form_field.variable]
        elif form_field.type not in {"select", "radio"}:
            values[form_field.variable] = _plausible(form_field)
    # Choices may depend on other values (option show_on): settle them once the rest is known.
    for form_field in fields:
        if form_field.type in {"select", "radio"} and form_field.variable not in chosen:
            offered = _offered(form_field, values, model_type)
            if form_field.default in offered:
                values[form_field.variable] = form_field.default
            elif offered:
                values[form_field.variable] = offered[0]
    return values


def _accepted(fields, values, model_type) -> None:
    try:
        credentials.clean_form(fields, values, model_type=model_type)
    except errors.InvalidInput as exc:
        pytest.fail(f"refused {values}: {exc.fields}")


def test_the_catalog_has_forms_to_check() -> None:
    assert len(FORMS) > 60
    assert {provider for provider, _, _ in FORMS} >= {"azure_openai", "volcengine_maas"}


@pytest.mark.parametrize(
    ("provider", "model_type", "fields"),
    FORMS,
    ids=[f"{p}-{t or 'provider'}" for p, t, _ in FORMS],
)
def test_a_form_filled_with_defaults_and_first_options_is_accepted(
    provider, model_type, fields
) -> None:
    _accepted(fields, _filled(fields, model_type), model_type)


@pytest.mark.parametrize(
    ("provider", "model_type", "fields"),
    FORMS,
    ids=[f"{p}-{t or 'provider'}" for p, t, _ in FORMS],
)
def test_every_offered_option_is_accepted(provider, model_type, fields) -> None:
    base = _filled(fields, model_type)
    for form_field in fields:
        if form_field.type not in {"select", "radio"}:
            continue
        for value in _offered(form_field, base, model_type):
            _accepted(
                fields, _filled(fields, model_type, **{form_field.variable: value}), model_type
            )


def test_azure_offers_and_accepts_its_llm_base_models() -> None:
    """The audit's case: gpt-5.5 is offered for llm, and was refused because the option's
    `__model_type` condition was checked without the model type."""
    fields = selectors.catalog().get("azure_openai").model_credential_schema.fields
    base_model = next(f for f in fields if f.variable == "base_model_name")
    values = _filled(fields, "llm", base_model_name="gpt-5.5")
    assert "gpt-5.5" in _offered(base_model, values, "llm")
    _accepted(fields, values, "llm")
    with pytest.raises(errors.InvalidInput) as caught:  # not an embedding model's option
        credentials.clean_form(fields, values, model_type="text-embedding")
    assert "base_model_name" in caught.value.fields
