"""Django admin as the operators' settings screen: any workspace's credentials, custom models,
load-balancing entries, fallbacks and default models are added and changed with the provider's
schema form, saved through the services (validation queued, audit entry naming the operator),
with field errors in the form and no secret in any page."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from providers import admin_forms, credentials, selectors, services
from providers.models import (
    AuditLogEntry,
    CheckStatus,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ValidationJob,
)
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

KEY = "sk-operator-typed-0000000001"
NEW_KEY = "sk-operator-typed-0000000002"
XINF_KEY = "xk-operator-typed-000000003"
LB_KEY = "sk-operator-lbentry-0000004"
SECRETS = (KEY, NEW_KEY, XINF_KEY, LB_KEY)
CREDENTIALS = "/admin/providers/providercredential/"
CUSTOM = "/admin/providers/custommodel/"
LB = "/admin/providers/loadbalancingentry/"
SETTINGS = "/admin/providers/modelsetting/"
DEFAULTS = "/admin/providers/defaultmodel/"
GPT = selectors.model_id("llm", "gpt-4o")


@pytest.fixture
def operator(admin_client, admin_user):
    admin_client.user = admin_user
    return admin_client


def shape(**chosen: str) -> str:
    """The hidden `form_shape` of a form built for these choices."""
    return urlencode(sorted(chosen.items()))


def page(response) -> str:
    html = response.content.decode()
    for secret in SECRETS:
        assert secret not in html, "a secret in an admin page"
    assert "enc1:" not in html
    return html


def field_errors(html: str, field: str) -> str:
    """The text of the error list of a field's row ("" when it has none)."""
    marker = f'field-{field}"'
    start = html.find(marker)
    assert start != -1, f"no row for {field}"
    row = html[start : html.find('<div class="form-row', start + 1)]
    return row if 'class="errorlist' in row else ""


def add_openai_credential(operator, tenant: Tenant, **extra: str):
    return operator.post(
        f"{CREDENTIALS}add/",
        {
            "tenant": tenant.pk,
            "provider": "openai",
            "name": "ops",
            "openai_api_key": KEY,
            "api_protocol": "chat",
            "form_shape": shape(provider="openai"),
            **extra,
        },
    )


def operator_entries(operator, action: str) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(action=action, actor=operator.user))


# --- Credentials --------------------------------------------------------------------------------


def test_the_add_page_asks_for_the_provider_then_shows_its_form(operator, tenant) -> None:
    first = page(operator.get(f"{CREDENTIALS}add/"))
    assert 'name="provider"' in first
    assert "data-reload" in first
    assert 'name="openai_api_key"' not in first  # no provider chosen yet: no schema fields

    html = page(operator.get(f"{CREDENTIALS}add/?provider=openai&tenant={tenant.pk}"))
    assert 'type="password" name="openai_api_key"' in html
    assert 'name="openai_organization"' in html
    assert '<option value="chat" selected>Chat Completions' in html  # the default
    assert "Chat Completions works with every OpenAI model" in html  # the field's help
    assert "js/admin.js" in html
    assert "css/admin.css" in html

    azure = page(operator.get(f"{CUSTOM}add/?provider=azure_openai&tenant={tenant.pk}"))
    # show_on travels with the widgets, for fields and for options.
    assert "data-show-on=" in azure
    assert "data-option-show-on=" in azure


def test_an_operator_adds_a_credential_for_any_workspace(operator, tenant) -> None:
    response = add_openai_credential(operator, tenant)
    assert response.status_code == 302, page(response)
    credential = ProviderCredential.objects.get(tenant=tenant, provider="openai")
    assert (credential.name, credential.is_active) == ("ops", True)
    assert credential.created_by == operator.user
    assert credentials.reveal(credential)["openai_api_key"] == KEY
    # Validation queued: a job row, and the credential is being checked.
    assert ValidationJob.objects.filter(credential=credential).count() == 1
    assert credential.status == CheckStatus.VALIDATING
    [entry] = operator_entries(operator, "credential.create")
    assert entry.tenant == tenant
    assert entry.changes["openai_api_key"] == "(secret changed)"
    log = LogEntry.objects.get(object_id=str(credential.pk))
    assert KEY not in log.change_message
    assert KEY not in log.object_repr

    changelist = page(operator.get(CREDENTIALS))
    assert "check-status-validating" in changelist
    assert "last checked" in changelist.lower()


def test_editing_keeps_the_secret_when_its_hint_comes_back(operator, tenant) -> None:
    add_openai_credential(operator, tenant)
    credential = ProviderCredential.objects.get(tenant=tenant)
    ProviderCredential.objects.filter(pk=credential.pk).update(status=CheckStatus.VALID)
    url = f"{CREDENTIALS}{credential.pk}/change/"
    hint = credential.masked["openai_api_key"]
    html = page(operator.get(url))
    assert f'value="{hint}"' in html

    jobs = ValidationJob.objects.count()
    response = operator.post(
        url,
        {"name": "renamed", "openai_api_key": hint, "api_protocol": "chat", "form_shape": ""},
    )
    assert response.status_code == 302, page(response)
    credential.refresh_from_db()
    assert credential.name == "renamed"
    assert credentials.reveal(credential)["openai_api_key"] == KEY
    assert credential.status == CheckStatus.VALID  # nothing to check again
    assert ValidationJob.objects.count() == jobs
    [entry] = operator_entries(operator, "credential.update")
    assert entry.changes == {"name": "renamed"}

    response = operator.post(
        url,
        {"name": "renamed", "openai_api_key": NEW_KEY, "api_protocol": "chat", "form_shape": ""},
    )
    assert response.status_code == 302, page(response)
    credential.refresh_from_db()
    assert credentials.reveal(credential)["openai_api_key"] == NEW_KEY
    assert ValidationJob.objects.count() == jobs + 1
    # Django's own log names the field changed, never its value; so does its history page.
    messages = [e.get_change_message() for e in LogEntry.objects.filter(object_id=credential.pk)]
    assert any("API Key" in m for m in messages)
    assert not any(NEW_KEY in m or KEY in m for m in messages)
    page(operator.get(f"{CREDENTIALS}{credential.pk}/history/"))


def test_a_missing_required_field_is_a_field_error_and_saves_nothing(operator, tenant) -> None:
    response = add_openai_credential(operator, tenant, openai_api_key="")
    assert response.status_code == 200
    html = page(response)
    assert "This field is required." in field_errors(html, "openai_api_key")
    assert not ProviderCredential.objects.exists()
    assert not AuditLogEntry.objects.filter(action="credential.create").exists()

    # A secret typed into a form that comes back with errors is not sent back to the page.
    response = add_openai_credential(operator, tenant, openai_api_base="ftp://example.com")
    html = page(response)
    assert "http://" in field_errors(html, "openai_api_base")
    assert not ProviderCredential.objects.exists()


def test_a_changed_provider_shows_its_form_before_anything_is_saved(operator, tenant) -> None:
    """Without the script that reloads the page, the form built for the new provider comes back
    with a note instead of being saved with fields the operator never saw."""
    response = operator.post(
        f"{CREDENTIALS}add/",
        {
            "tenant": tenant.pk,
            "provider": "anthropic",
            "openai_api_key": KEY,
            "form_shape": shape(provider="openai"),
        },
    )
    html = page(response)
    assert response.status_code == 200
    assert "The form changed with your choice" in html
    assert 'name="anthropic_api_key"' in html
    assert not ProviderCredential.objects.exists()


def test_a_duplicate_name_is_a_form_error(operator, tenant) -> None:
    add_openai_credential(operator, tenant)
    response = add_openai_credential(operator, tenant)
    assert response.status_code == 200
    assert "already exists" in page(response)
    assert ProviderCredential.objects.count() == 1


def test_make_active_and_delete_go_through_the_services(operator, tenant) -> None:
    add_openai_credential(operator, tenant)
    add_openai_credential(operator, tenant, name="backup", make_active="on")
    backup = ProviderCredential.objects.get(name="backup")
    assert backup.is_active
    assert not ProviderCredential.objects.get(name="ops").is_active
    assert operator_entries(operator, "credential.activate")

    response = operator.post(f"{CREDENTIALS}{backup.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert ProviderCredential.objects.get(name="ops").is_active  # the other one takes over
    assert operator_entries(operator, "credential.delete")


# --- Custom models ------------------------------------------------------------------------------


def xinference_values(**extra: str) -> dict:
    return {
        "tenant": "",
        "provider": "xinference",
        "model_type": "llm",
        "model": "qwen",
        "server_url": "http://10.0.0.5:9997",
        "model_uid": "qwen-typo",
        "api_key": XINF_KEY,
        "invoke_timeout": "60",
        "max_retries": "3",
        "form_shape": shape(provider="xinference"),
        **extra,
    }


def test_a_custom_model_is_added_and_its_uid_edited(operator, tenant) -> None:
    response = operator.post(f"{CUSTOM}add/", xinference_values(tenant=str(tenant.pk)))
    assert response.status_code == 302, page(response)
    custom = CustomModel.objects.get(tenant=tenant, model="qwen")
    assert custom.config["model_uid"] == "qwen-typo"
    assert ValidationJob.objects.filter(custom_model=custom).count() == 1
    assert operator_entries(operator, "custom_model.create")

    url = f"{CUSTOM}{custom.pk}/change/"
    html = page(operator.get(url))
    assert 'value="qwen-typo"' in html
    assert 'data-model-type="llm"' in html  # for __model_type show_on
    hint = custom.masked["api_key"]
    values = xinference_values(model_uid="qwen2.5-instruct", api_key=hint, form_shape="")
    response = operator.post(url, values)
    assert response.status_code == 302, page(response)
    custom.refresh_from_db()
    assert custom.config["model_uid"] == "qwen2.5-instruct"
    assert credentials.reveal(custom)["api_key"] == XINF_KEY
    assert ValidationJob.objects.filter(custom_model=custom).count() == 2
    [entry] = operator_entries(operator, "custom_model.update")
    assert entry.changes == {"model_uid": "qwen2.5-instruct"}


def test_custom_model_field_errors_come_back_all_at_once(operator, tenant) -> None:
    values = xinference_values(tenant=str(tenant.pk), server_url="", model_uid="", max_retries="x")
    response = operator.post(f"{CUSTOM}add/", values)
    assert response.status_code == 200
    html = page(response)
    assert "This field is required." in field_errors(html, "server_url")
    assert "This field is required." in field_errors(html, "model_uid")
    assert field_errors(html, "max_retries")
    assert not CustomModel.objects.exists()


# --- Load balancing, fallbacks, defaults --------------------------------------------------------


@pytest.fixture
def configured(operator, tenant) -> ProviderCredential:
    add_openai_credential(operator, tenant)
    credential = ProviderCredential.objects.get(tenant=tenant)
    ProviderCredential.objects.filter(pk=credential.pk).update(status=CheckStatus.VALID)
    credential.refresh_from_db()
    return credential


def test_lb_entries_are_added_with_own_or_named_credentials(operator, tenant, configured) -> None:
    chosen = {"tenant": str(tenant.pk), "provider": "openai", "model": GPT}
    html = page(operator.get(f"{LB}add/?{urlencode(chosen)}"))
    assert 'name="openai_api_key"' in html
    assert f'<option value="{configured.pk}">ops</option>' in html

    own = {
        **chosen,
        "name": "second key",
        "credential": "",
        "openai_api_key": LB_KEY,
        "api_protocol": "chat",
        "weight": "3",
        "enabled": "on",
        "form_shape": shape(**chosen),
    }
    response = operator.post(f"{LB}add/", own)
    assert response.status_code == 302, page(response)
    entry = LoadBalancingEntry.objects.get(name="second key")
    assert (entry.model, entry.weight, entry.enabled) == ("gpt-4o", 3, True)
    assert credentials.reveal(entry)["openai_api_key"] == LB_KEY
    assert ValidationJob.objects.filter(lb_entry=entry).count() == 1
    assert operator_entries(operator, "lb_entry.create")

    named = {**own, "name": "", "credential": str(configured.pk), "openai_api_key": ""}
    response = operator.post(f"{LB}add/", named)
    assert response.status_code == 302, page(response)
    assert LoadBalancingEntry.objects.get(credential=configured).name == "ops"

    bad = {**own, "name": "third", "weight": "0"}
    response = operator.post(f"{LB}add/", bad)
    assert "Give a weight from 1 to 100." in field_errors(page(response), "weight")


def test_fallbacks_are_set_in_order_and_checked_by_the_service(
    operator, tenant, configured
) -> None:
    chosen = {"tenant": str(tenant.pk), "provider": "openai", "model": GPT}
    html = page(operator.get(f"{SETTINGS}add/?{urlencode(chosen)}"))
    assert 'value="openai/gpt-4o-mini"' in html
    assert 'value="openai/gpt-4o"' not in html  # not a fallback of itself

    values = {
        **chosen,
        "enabled": "on",
        "alias": "",
        "fallback_1": "openai/gpt-4o-mini",
        "fallback_2": "openai/gpt-4.1",
        "form_shape": shape(**chosen),
    }
    response = operator.post(f"{SETTINGS}add/", values)
    assert response.status_code == 302, page(response)
    setting = ModelSetting.objects.get(tenant=tenant, model="gpt-4o")
    assert setting.fallbacks == [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "openai", "model": "gpt-4.1"},
    ]
    [entry] = operator_entries(operator, "model.update")
    assert entry.changes["fallbacks"] == setting.fallbacks

    url = f"{SETTINGS}{setting.pk}/change/"
    html = page(operator.get(url))
    assert '<option value="openai/gpt-4o-mini" selected>' in html
    # Twice the same model: the service's message, as a form error; nothing changes.
    twice = {
        "enabled": "on",
        "fallback_1": "openai/gpt-4.1",
        "fallback_2": "openai/gpt-4.1",
        "form_shape": "",
    }
    response = operator.post(url, twice)
    assert response.status_code == 200
    assert "is listed twice" in page(response)
    setting.refresh_from_db()
    assert len(setting.fallbacks) == 2
    # Reordered.
    swapped = {**twice, "fallback_1": "openai/gpt-4.1", "fallback_2": "openai/gpt-4o-mini"}
    assert operator.post(url, swapped).status_code == 302
    setting.refresh_from_db()
    assert [f["model"] for f in setting.fallbacks] == ["gpt-4.1", "gpt-4o-mini"]


def test_default_models_are_chosen_among_usable_models(operator, tenant, configured) -> None:
    chosen = {"tenant": str(tenant.pk), "model_type": "llm"}
    html = page(operator.get(f"{DEFAULTS}add/?{urlencode(chosen)}"))
    assert 'value="openai/gpt-4o"' in html
    response = operator.post(
        f"{DEFAULTS}add/", {**chosen, "choice": "openai/gpt-4o", "form_shape": shape(**chosen)}
    )
    assert response.status_code == 302, page(response)
    default = DefaultModel.objects.get(tenant=tenant, model_type="llm")
    assert (default.provider, default.model) == ("openai", "gpt-4o")
    assert operator_entries(operator, "default_model.set")

    url = f"{DEFAULTS}{default.pk}/change/"
    response = operator.post(url, {"choice": "openai/gpt-4.1", "form_shape": ""})
    assert response.status_code == 302, page(response)
    default.refresh_from_db()
    assert default.model == "gpt-4.1"
    response = operator.post(url, {"choice": "anthropic/claude-x", "form_shape": ""})
    assert response.status_code == 200
    assert field_errors(page(response), "choice")

    assert operator.post(f"{DEFAULTS}{default.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not DefaultModel.objects.filter(tenant=tenant).exists()
    assert operator_entries(operator, "default_model.clear")


def test_an_lb_entry_edit_keeps_its_secret(operator, tenant, configured) -> None:
    view = selectors.model_get(tenant=tenant, provider="openai", model_key=GPT)
    entry = services.lb_entry_create(
        tenant=tenant,
        view=view,
        name="e",
        credential_id=None,
        values={"openai_api_key": LB_KEY},
        weight=1,
        enabled=True,
        actor=None,
    )
    hint = entry.masked["openai_api_key"]
    response = operator.post(
        f"{LB}{entry.pk}/change/",
        {"weight": "5", "enabled": "on", "openai_api_key": hint, "api_protocol": "chat"},
    )
    assert response.status_code == 302, page(response)
    entry.refresh_from_db()
    assert entry.weight == 5
    assert credentials.reveal(entry)["openai_api_key"] == LB_KEY
    [audit] = operator_entries(operator, "lb_entry.update")
    assert audit.changes["weight"] == 5
    assert "openai_api_key" not in audit.changes  # the hint came back: the secret is unchanged


def test_a_viewer_sees_values_as_hints_and_no_inputs(operator, tenant, django_user_model) -> None:
    add_openai_credential(operator, tenant)
    credential = ProviderCredential.objects.get(tenant=tenant)
    viewer = django_user_model.objects.create_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_providercredential"))
    operator.force_login(viewer)
    html = page(operator.get(f"{CREDENTIALS}{credential.pk}/change/"))
    assert credential.masked["openai_api_key"] in html
    assert 'name="openai_api_key"' not in html
    assert 'name="_save"' not in html
    assert operator.get(f"{CREDENTIALS}add/").status_code == 403
    assert (
        operator.post(f"{CREDENTIALS}{credential.pk}/delete/", {"post": "yes"}).status_code == 403
    )


def test_no_manifest_field_collides_with_the_admin_forms_own_fields(tenant) -> None:
    """Schema fields sit beside the forms' own fields under their variable names."""
    own = {
        "tenant",
        "provider",
        "name",
        "make_active",
        "model_type",
        "model",
        "credential",
        "weight",
        "enabled",
        "load_balancing_enabled",
        "alias",
        "choice",
        "form_shape",
        *admin_forms.FALLBACK_FIELDS,
    }
    for manifest in selectors.catalog():
        schema = manifest.provider_credential_schema + (
            manifest.model_credential_schema.fields if manifest.model_credential_schema else ()
        )
        assert not own & {f.variable for f in schema}, manifest.provider
