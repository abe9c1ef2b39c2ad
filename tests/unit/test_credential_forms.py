"""credentials.clean_form: every kind of bad form gives a field error; nothing else passes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from config import errors
from providers import credentials, selectors


@pytest.fixture(scope="module")
def openai_form():
    return selectors.catalog().get("openai").provider_credential_schema


@pytest.fixture(scope="module")
def xinference_form():
    return selectors.catalog().get("xinference").model_credential_schema.fields


@pytest.fixture(scope="module")
def compatible_form():
    return selectors.catalog().get("openai_api_compatible").model_credential_schema.fields


def _field_errors(form, values, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(errors.InvalidInput) as caught:
        credentials.clean_form(form, values, **kwargs)
    return caught.value.fields


def test_a_good_form_is_split_into_plain_values_and_secrets(openai_form) -> None:
    cleaned = credentials.clean_form(
        openai_form,
        {"openai_api_key": "sk-proj-123456789", "openai_api_base": "https://proxy.example/v1"},
    )
    assert cleaned.secrets == {"openai_api_key": "sk-proj-123456789"}
    assert cleaned.plain["openai_api_base"] == "https://proxy.example/v1"
    assert cleaned.plain["api_protocol"] == "chat"  # the default is filled in


def test_missing_required_field(openai_form) -> None:
    assert _field_errors(openai_form, {}) == {"openai_api_key": ["This field is required."]}
    assert "openai_api_key" in _field_errors(openai_form, {"openai_api_key": "   "})


def test_unknown_field(openai_form) -> None:
    problems = _field_errors(openai_form, {"openai_api_key": "sk-1", "debug": "1"})
    assert problems == {"debug": ["Unknown field for this form."]}


def test_wrong_option(openai_form) -> None:
    problems = _field_errors(openai_form, {"openai_api_key": "sk-1", "api_protocol": "grpc"})
    assert "not a valid choice" in problems["api_protocol"][0]


def test_over_long_value(openai_form) -> None:
    problems = _field_errors(openai_form, {"openai_api_key": "k" * 513})
    assert problems["openai_api_key"] == ["Ensure this value has at most 512 characters."]


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://files.example",
        "api.openai.com/v1",
        "http://",
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/computeMetadata",
        "http://[fe80::1]/",
    ],
)
def test_bad_urls(openai_form, url) -> None:
    problems = _field_errors(openai_form, {"openai_api_key": "sk-1", "openai_api_base": url})
    assert list(problems) == ["openai_api_base"]


def test_private_addresses_are_allowed_for_self_hosted_servers(xinference_form) -> None:
    cleaned = credentials.clean_form(
        xinference_form,
        {"server_url": "http://192.168.1.100:9997", "model_uid": "qwen2.5-instruct"},
        model_type="llm",
    )
    assert cleaned.plain["server_url"] == "http://192.168.1.100:9997"


def test_integer_fields_and_wrong_types(xinference_form) -> None:
    problems = _field_errors(
        xinference_form,
        {"server_url": "http://x:9997", "model_uid": ["a"], "invoke_timeout": "soon"},
        model_type="llm",
    )
    assert problems == {"model_uid": ["Must be text."], "invoke_timeout": ["Enter a whole number."]}
    cleaned = credentials.clean_form(
        xinference_form,
        {"server_url": "http://x:9997", "model_uid": "m", "invoke_timeout": 120},
        model_type="llm",
    )
    assert cleaned.plain["invoke_timeout"] == "120"


def test_every_problem_is_reported_at_once(openai_form) -> None:
    problems = _field_errors(
        openai_form, {"openai_api_base": "nope", "api_protocol": "x", "extra": 1}
    )
    assert set(problems) == {"openai_api_key", "openai_api_base", "api_protocol", "extra"}


def test_show_on_hides_fields_by_model_type(compatible_form) -> None:
    base = {"endpoint_url": "http://10.0.0.2:8000/v1"}
    hidden = {f.variable for f in compatible_form if f.show_on}
    assert hidden  # the form has conditional fields
    for_llm = credentials.clean_form(compatible_form, base, model_type="llm")
    for_embedding = credentials.clean_form(compatible_form, base, model_type="text-embedding")
    llm_only = {
        f.variable
        for f in compatible_form
        if any(c.variable == "__model_type" and c.value == "llm" for c in f.show_on)
    }
    assert llm_only
    assert llm_only & set(for_llm.plain)
    assert not llm_only & set(for_embedding.plain)


def test_an_unchanged_hint_keeps_the_stored_secret(openai_form) -> None:
    stored = SimpleNamespace(
        config={"openai_api_key": "enc1:...", "api_protocol": "chat"},
        masked={"openai_api_key": credentials.obfuscate("sk-proj-the-real-key-9876")},
    )
    cleaned = credentials.clean_form(
        openai_form, {"openai_api_key": stored.masked["openai_api_key"]}, stored=stored
    )
    assert cleaned.kept == {"openai_api_key"}
    assert cleaned.secrets == {}
    changed = credentials.clean_form(openai_form, {"openai_api_key": "sk-new"}, stored=stored)
    assert changed.secrets == {"openai_api_key": "sk-new"}


def test_partial_updates_keep_what_is_not_sent(openai_form) -> None:
    stored = SimpleNamespace(
        config={"openai_api_key": "enc1:...", "openai_organization": "org-1"},
        masked={"openai_api_key": "sk-…9876"},
    )
    cleaned = credentials.clean_form(
        openai_form, {"openai_organization": "org-2"}, stored=stored, partial=True
    )
    assert cleaned.kept == {"openai_api_key"}
    assert cleaned.plain["openai_organization"] == "org-2"


@pytest.mark.parametrize(
    ("secret", "hint"),
    [("sk-proj-abcdefghijklmnop1234", "sk-…1234"), ("short", "••••••••"), ("", "••••••••")],
)
def test_obfuscate_shows_little(secret, hint) -> None:
    assert credentials.obfuscate(secret) == hint


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("invoke_timeout", "0", "Enter a number from 1 to 600."),
        ("invoke_timeout", "999999", "Enter a number from 1 to 600."),
        ("invoke_timeout", "-5", "Enter a number from 1 to 600."),
        ("max_retries", "11", "Enter a number from 0 to 10."),
        ("max_retries", "-1", "Enter a number from 0 to 10."),
        ("invoke_timeout", "", "This field is required."),
        ("invoke_timeout", "1.5", "Enter a whole number."),
    ],
)
def test_numbers_are_range_checked(xinference_form, field, value, message) -> None:
    values = {"server_url": "http://10.0.0.5:9997", "model_uid": "qwen", field: value}
    assert _field_errors(xinference_form, values, model_type="llm") == {field: [message]}


def test_the_timeout_bound_follows_the_configured_maximum(xinference_form, settings) -> None:
    settings.UPSTREAM_TIMEOUT_MAX = 30
    values = {"server_url": "http://10.0.0.5:9997", "model_uid": "qwen", "invoke_timeout": "60"}
    assert _field_errors(xinference_form, values, model_type="llm") == {
        "invoke_timeout": ["Enter a number from 1 to 30."]
    }
    values["invoke_timeout"] = "30"
    assert (
        credentials.clean_form(xinference_form, values, model_type="llm").plain["invoke_timeout"]
        == "30"
    )


def test_batch_and_chunk_sizes_are_at_least_one(compatible_form) -> None:
    values = {"endpoint_url": "http://10.0.0.5:8000/v1", "context_size": "512", "max_chunks": "0"}
    assert _field_errors(compatible_form, values, model_type="text-embedding") == {
        "max_chunks": ["Enter a number of at least 1."]
    }


def test_full_width_digits_are_not_a_number(xinference_form) -> None:
    values = {
        "server_url": "http://10.0.0.5:9997",
        "model_uid": "q",
        "invoke_timeout": "\uff16\uff10",
    }
    assert _field_errors(xinference_form, values, model_type="llm") == {
        "invoke_timeout": ["Enter a whole number."]
    }
