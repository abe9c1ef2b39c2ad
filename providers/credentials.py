"""Credential forms: check submitted values against a manifest's form, seal the secret ones.

`clean_form` accepts only the fields the form declares and checks each (required, type, options,
length, URL/integer format, show_on), raising `InvalidInput` with every field's errors at once.
A secret sent back as its obfuscated hint (what responses show) keeps the stored secret.
Secrets are decrypted only by `reveal`, which only code that calls a provider uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from config import errors
from providers import outbound
from providers.models import CheckedConfig
from providers.runtime import netguard
from providers.schema import MODEL_TYPE_VARIABLE, NUMERIC_FORMATS, FormField, ShowOn
from tenants import vault
from tenants.fields import secret_place

_MASK_CHAR = "•"
_INTEGER = re.compile(r"^-?[0-9]+$")  # ASCII digits only: not full-width ones
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def obfuscate(secret: str) -> str:
    """`sk-…a1b2`: enough to recognise a key, too little to use it. Short secrets show nothing."""
    if len(secret) < 12:
        return _MASK_CHAR * 8
    return f"{secret[:3]}…{secret[-4:]}"


@dataclass(slots=True)
class CleanedForm:
    plain: dict[str, Any] = field(default_factory=dict)  # non-secret values, as stored
    secrets: dict[str, str] = field(default_factory=dict)  # new secret plaintexts, to seal
    kept: set[str] = field(default_factory=set)  # secrets to keep as stored

    def changed_fields(self, before: Mapping[str, Any]) -> dict[str, Any]:
        """What an audit entry may say: new non-secret values, and which secrets changed."""
        changes: dict[str, Any] = {
            name: value for name, value in self.plain.items() if before.get(name) != value
        }
        changes.update(dict.fromkeys(self.secrets, "(secret changed)"))
        return changes


def _visible(form_field: FormField, values: Mapping[str, Any], model_type: str | None) -> bool:
    return all(_matches(condition, values, model_type) for condition in form_field.show_on)


def _matches(condition: ShowOn, values: Mapping[str, Any], model_type: str | None) -> bool:
    if condition.variable == MODEL_TYPE_VARIABLE:
        return model_type == condition.value
    value = values.get(condition.variable)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return value == condition.value


# The address guard (providers/runtime/netguard.py, without Django) words its refusals in
# English; a form shows them in the user's language (tests/unit/test_translations.py checks
# that every refusal the guard can give is listed here).
REFUSALS = (
    gettext_noop("cloud metadata addresses are never allowed"),
    gettext_noop("cloud metadata host names are never allowed"),
    gettext_noop("unspecified addresses are never allowed"),
    gettext_noop("link-local addresses are never allowed"),
    gettext_noop("multicast addresses are never allowed"),
    gettext_noop("broadcast addresses are never allowed"),
    gettext_noop("reserved addresses are never allowed"),
    gettext_noop("loopback addresses are not allowed on this server"),
    gettext_noop("private network addresses are not allowed on this server"),
)
_LEADS_TO = re.compile(r"(?P<reason>.+) \(it leads to (?P<address>\S+)\)")
_DENIED = re.compile(r"(?P<network>\S+) is denied on this server")


def refusal_words(reason: str) -> str:
    """netguard's refusal in the user's language (an unknown one as written)."""
    if found := _LEADS_TO.fullmatch(reason):
        return _("%(reason)s (it leads to %(address)s)") % {
            "reason": refusal_words(found["reason"]),
            "address": found["address"],
        }
    if found := _DENIED.fullmatch(reason):
        return _("%(network)s is denied on this server") % {"network": found["network"]}
    return _(reason) if reason in REFUSALS else reason


def _check_url(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return _("Enter a URL without spaces.")
    try:
        parts = urlsplit(value)
        port = parts.port  # a port out of range or not a number raises here
    except ValueError:
        return _("Enter a valid URL.")
    if parts.scheme not in {"http", "https"} or not parts.hostname or port == 0:
        return _("Enter a full http:// or https:// URL.")
    try:  # the host as it goes on the wire: 169。254。169。254 is 169.254.169.254
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return _("Enter a valid host name.")
    # An early, friendly refusal (SSRF): metadata names and literal addresses in every spelling
    # (2852039166, 0xa9fea9fe, [::ffff:169.254.169.254], a trailing dot...), without DNS. What a
    # name resolves to is judged when connecting (providers/runtime/netguard.py).
    problem = netguard.host_refusal(host, outbound.policy())
    if problem:
        return _("This host cannot be used: %(problem)s.") % {"problem": refusal_words(problem)}
    return None


def _coerce(
    form_field: FormField, raw: Any, values: Mapping[str, Any], model_type: str | None
) -> tuple[Any, str | None]:
    """The stored value for `raw`, or an error message."""
    if form_field.type == "switch":
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, str) and raw.lower() in {"true", "false"}:
            return raw.lower() == "true", None
        return None, _("Must be true or false.")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None, _("Must be text.")
    value = str(raw).strip()
    if _CONTROL.search(value):
        return None, _("Remove control characters (line breaks, tabs, NUL) from this value.")
    if len(value) > form_field.max_length:
        return None, _("Ensure this value has at most %(limit)d characters.") % {
            "limit": form_field.max_length
        }
    if form_field.type in {"select", "radio"}:
        allowed = [
            o.value
            for o in form_field.options
            if all(_matches(c, values, model_type) for c in o.show_on)
        ]
        if value not in allowed:
            return None, _("%(value)r is not a valid choice (%(allowed)s).") % {
                "value": value,
                "allowed": ", ".join(allowed),
            }
    if value and form_field.format == "url":
        problem = _check_url(value)
        if problem:
            return None, problem
    if value and form_field.format in NUMERIC_FORMATS:
        return value, _check_number(form_field, value)
    return value, None


def _check_number(form_field: FormField, value: str) -> str | None:
    if not _INTEGER.match(value):
        return _("Enter a whole number.")
    low, high = form_field.min, form_field.max
    if form_field.format == "seconds":
        low = max(low or 1, 1)
        high = min(high or settings.UPSTREAM_TIMEOUT_MAX, settings.UPSTREAM_TIMEOUT_MAX)
    number = int(value)
    if low is not None and high is not None and not low <= number <= high:
        return _("Enter a number from %(low)d to %(high)d.") % {"low": low, "high": high}
    if low is not None and number < low:
        return _("Enter a number of at least %(low)d.") % {"low": low}
    if high is not None and number > high:
        return _("Enter a number of at most %(high)d.") % {"high": high}
    return None


def clean_form(
    fields: Sequence[FormField],
    submitted: Mapping[str, Any],
    *,
    model_type: str | None = None,
    stored: CheckedConfig | None = None,
    partial: bool = False,
) -> CleanedForm:
    """Check `submitted` against `fields`. With `stored`, an unchanged obfuscated secret is kept;
    with `partial` (PATCH), fields not submitted keep their stored values."""
    problems: dict[str, list[str]] = {}
    declared = {f.variable: f for f in fields}
    for name in submitted:
        if name not in declared:
            problems[name] = [_("Unknown field for this form.")]

    stored_config = stored.config if stored is not None else {}
    stored_masked = stored.masked if stored is not None else {}
    # First pass: the raw value of each field, so show_on can look at the others.
    raw_values: dict[str, Any] = {}
    for form_field in fields:
        name = form_field.variable
        if name in submitted and submitted[name] is not None:
            raw_values[name] = submitted[name]
        elif partial and name in stored_config:
            raw_values[name] = stored_masked.get(name, stored_config[name])
        elif form_field.default is not None:
            raw_values[name] = form_field.default

    cleaned = CleanedForm()
    for form_field in fields:
        name = form_field.variable
        if not _visible(form_field, raw_values, model_type):
            continue  # hidden by show_on: neither required nor stored
        raw = raw_values.get(name)
        if form_field.is_secret and raw and name in stored_masked and raw == stored_masked[name]:
            cleaned.kept.add(name)  # the form sent back the hint it was shown
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if form_field.required:
                problems.setdefault(name, []).append(_("This field is required."))
            continue
        value, problem = _coerce(form_field, raw, raw_values, model_type)
        if problem:
            problems.setdefault(name, []).append(problem)
        elif form_field.is_secret:
            cleaned.secrets[name] = value
        else:
            cleaned.plain[name] = value
    if problems:
        raise errors.InvalidInput(_("Some credential fields are not valid."), fields=problems)
    return cleaned


def seal(instance: CheckedConfig, cleaned: CleanedForm) -> None:
    """Write `cleaned` into the (saved) instance's config: secrets sealed, hints in `masked`."""
    if instance.pk is None:
        raise ValueError("Save the row first: a secret is sealed to its row's id.")
    config: dict[str, Any] = dict(cleaned.plain)
    masked: dict[str, str] = {}
    for name in cleaned.kept:
        config[name] = instance.config[name]
        masked[name] = instance.masked[name]
    for name, secret in cleaned.secrets.items():
        config[name] = vault.encrypt(
            instance.tenant, secret, place=secret_place(instance, "config", name)
        )
        masked[name] = obfuscate(secret)
    instance.config = config
    instance.masked = masked


def shown(instance: CheckedConfig) -> dict[str, Any]:
    """The form values as responses and pages show them: secrets as their hints."""
    return {
        **{k: v for k, v in instance.config.items() if k not in instance.masked},
        **instance.masked,
    }


def reveal(instance: CheckedConfig) -> dict[str, Any]:
    """Every value in plaintext. Only for code that calls the provider, inside a worker."""
    values = dict(instance.config)
    for name in instance.masked:
        values[name] = vault.decrypt(
            instance.tenant, instance.config[name], place=secret_place(instance, "config", name)
        )
    return values
