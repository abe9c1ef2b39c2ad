"""Django admin for operators: provider settings, quotas, validations and invocations.

Every page renders; secrets show only as their obfuscated hints; read-only admins refuse writes;
actions re-validate and rotate keys; quota limits are adjustable. (Adding and changing provider
settings with the schema forms: test_admin_settings.py.)"""

from __future__ import annotations

import pytest

from invocations.models import Invocation
from providers import credentials, selectors, services
from providers.models import (
    AuditLogEntry,
    CheckStatus,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ProviderQuota,
    QuotaType,
    ValidationJob,
)
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

CRED_SECRET = "sk-admin-test-000000001"
CUSTOM_SECRET = "xk-admin-custom-0000002"
LB_SECRET = "sk-admin-lbentry-000003"
SECRETS = (CRED_SECRET, CUSTOM_SECRET, LB_SECRET)
GPT = selectors.model_id("llm", "gpt-4o")


@pytest.fixture
def operator(admin_client):
    return admin_client


@pytest.fixture
def data(tenant: Tenant) -> dict:
    credential = services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": CRED_SECRET},
        actor=None,
    )
    custom = services.custom_model_create(
        tenant=tenant,
        provider="xinference",
        model="acme-llm",
        model_type="llm",
        values={
            "server_url": "http://10.0.0.1:9997",
            "model_uid": "acme-llm",
            "api_key": CUSTOM_SECRET,
        },
        actor=None,
    )
    view = selectors.model_get(tenant=tenant, provider="openai", model_key=GPT)
    entry = services.lb_entry_create(
        tenant=tenant,
        view=view,
        name="second",
        credential_id=None,
        values={"openai_api_key": LB_SECRET},
        weight=2,
        enabled=True,
        actor=None,
    )
    setting = services.model_setting_update(
        tenant=tenant, view=view, load_balancing_enabled=True, actor=None
    )
    default = services.default_model_set(
        tenant=tenant, model_type="llm", provider="openai", model="gpt-4o", actor=None
    )
    quota = ProviderQuota.objects.create(
        tenant=tenant, provider="openai", quota_type=QuotaType.TRIAL, limit=1000, used=100
    )
    invocation = Invocation.objects.create(
        tenant=tenant,
        model_type="llm",
        provider="openai",
        model="gpt-4o",
        credential=credential,
        request={"messages": [{"role": "user", "content": "hi"}]},
        error_code="upstream_timeout",
        status="failed",
    )
    return {
        "providercredential": credential,
        "custommodel": custom,
        "loadbalancingentry": entry,
        "modelsetting": setting,
        "defaultmodel": default,
        "providerquota": quota,
        "auditlogentry": AuditLogEntry.objects.filter(tenant=tenant).first(),
        "validationjob": ValidationJob.objects.filter(tenant=tenant).first(),
        "invocation": invocation,
    }


def _url(obj, page: str = "") -> str:
    opts = obj._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    return f"{base}{obj.pk}/{page}" if page else base


def _pages(data: dict) -> list[str]:
    urls = []
    for obj in data.values():
        assert obj is not None
        urls += [_url(obj), _url(obj, "change/")]
    return urls


def test_every_changelist_and_change_page_renders(operator, data) -> None:
    for url in ["/admin/", *_pages(data)]:
        assert operator.get(url).status_code == 200, url
    # Filters, search and date drill-down work on the list pages.
    for url in [
        "/admin/providers/providercredential/?status__exact=validating&q=Acme",
        "/admin/providers/custommodel/?model_type__exact=llm&q=acme",
        "/admin/providers/validationjob/?provider=openai&q=gpt",
        "/admin/invocations/invocation/?error_code=upstream_timeout&q=Acme",
        "/admin/providers/auditlogentry/?action=credential.create",
        "/admin/providers/providerquota/?quota_type__exact=trial&q=Acme",
    ]:
        response = operator.get(url)
        assert response.status_code == 200, url
        assert "errornote" not in response.content.decode(), url
    assert (
        data["invocation"].model in operator.get("/admin/invocations/invocation/").content.decode()
    )


def test_secrets_show_only_as_obfuscated_hints(operator, data, tenant) -> None:
    pages = {url: operator.get(url).content.decode() for url in _pages(data)}
    pages["/admin/tenants/tenant/"] = operator.get("/admin/tenants/tenant/").content.decode()
    tenant_page = f"/admin/tenants/tenant/{tenant.pk}/change/"
    pages[tenant_page] = operator.get(tenant_page).content.decode()
    for url, page in pages.items():
        for secret in SECRETS:
            assert secret not in page, url
        assert "enc1:" not in page, url

    for kind, secret_name in [
        ("providercredential", "openai_api_key"),
        ("custommodel", "api_key"),
        ("loadbalancingentry", "openai_api_key"),
    ]:
        row = data[kind]
        hint = row.masked[secret_name]
        assert "…" in hint
        assert hint in pages[_url(row, "change/")], kind
        # No input for the sealed values or their hints.
        assert 'name="config"' not in pages[_url(row, "change/")]
        assert 'name="masked"' not in pages[_url(row, "change/")]
    assert "http://10.0.0.1:9997" in pages[_url(data["custommodel"], "change/")]


@pytest.mark.parametrize("kind", ["auditlogentry", "validationjob", "invocation"])
def test_read_only_admins_refuse_add_change_and_delete(operator, data, kind) -> None:
    obj = data[kind]
    model = type(obj)
    before = model.objects.count()
    assert operator.get(f"{_url(obj)}add/").status_code == 403
    assert operator.post(f"{_url(obj)}add/", {}).status_code == 403
    assert operator.post(_url(obj, "change/"), {"model": "changed"}).status_code == 403
    assert operator.post(_url(obj, "delete/"), {"post": "yes"}).status_code == 403
    assert model.objects.count() == before
    changelist = operator.get(_url(obj)).content.decode()
    assert f"{_url(obj)}add/" not in changelist
    change_page = operator.get(_url(obj, "change/")).content.decode()
    assert 'name="_save"' not in change_page


@pytest.mark.parametrize("kind", ["providercredential", "custommodel", "loadbalancingentry"])
def test_the_revalidate_action_queues_a_validation_for_each(
    operator, data, kind, django_capture_on_commit_callbacks
) -> None:
    obj = data[kind]
    model = type(obj)
    model.objects.filter(pk=obj.pk).update(status=CheckStatus.INVALID)
    before = ValidationJob.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator.post(
            _url(obj), {"action": "revalidate", "_selected_action": [obj.pk]}, follow=True
        )
    assert response.status_code == 200
    assert "Queued 1 validation(s)." in response.content.decode()
    assert ValidationJob.objects.count() == before + 1
    job = ValidationJob.objects.order_by("-id").first()
    assert job.target == obj
    # the task is sent once the job is committed (the other callback publishes the settings change)
    sent = [c for c in callbacks if c.__qualname__.startswith("validation_queue")]
    assert len(sent) == 1
    obj.refresh_from_db()
    assert obj.status == CheckStatus.VALIDATING


def test_the_revalidate_action_counts_several(operator, data, tenant) -> None:
    second = services.credential_create(
        tenant=tenant,
        provider="openai",
        name="backup",
        values={"openai_api_key": "sk-admin-test-000000009"},
        actor=None,
    )
    before = ValidationJob.objects.count()
    response = operator.post(
        "/admin/providers/providercredential/",
        {"action": "revalidate", "_selected_action": [data["providercredential"].pk, second.pk]},
        follow=True,
    )
    assert "Queued 2 validation(s)." in response.content.decode()
    assert ValidationJob.objects.count() == before + 2


def test_rotate_action_changes_the_key_pair_and_keeps_secrets(operator, data, tenant) -> None:
    credential = data["providercredential"]
    before = ProviderCredential.objects.get(pk=credential.pk).config["openai_api_key"]
    response = operator.post(
        "/admin/tenants/tenant/",
        {"action": "rotate_key_pair", "_selected_action": [tenant.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "re-encrypted 3 secret(s)" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.key_version == 2
    credential = ProviderCredential.objects.get(pk=credential.pk)
    assert credential.config["openai_api_key"] != before
    assert credentials.reveal(credential)["openai_api_key"] == CRED_SECRET
    assert credentials.reveal(CustomModel.objects.get(pk=data["custommodel"].pk))["api_key"] == (
        CUSTOM_SECRET
    )
    entry = LoadBalancingEntry.objects.get(pk=data["loadbalancingentry"].pk)
    assert credentials.reveal(entry)["openai_api_key"] == LB_SECRET


def test_rotate_action_reports_a_crypto_error_and_changes_nothing(
    operator, data, tenant, other_tenant
) -> None:
    credential = data["providercredential"]
    ProviderCredential.objects.filter(pk=credential.pk).update(
        config={"openai_api_key": "enc1:not-base64!"}
    )
    custom_before = CustomModel.objects.get(pk=data["custommodel"].pk).config
    response = operator.post(
        "/admin/tenants/tenant/",
        {"action": "rotate_key_pair", "_selected_action": [tenant.pk, other_tenant.pk]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "was not rotated" in page
    assert "Rotated the key pair of 1 workspace(s)" in page  # the other one still rotated
    tenant.refresh_from_db()
    other_tenant.refresh_from_db()
    assert tenant.key_version == 1
    assert other_tenant.key_version == 2
    assert CustomModel.objects.get(pk=data["custommodel"].pk).config == custom_before


def test_quota_limit_can_be_changed_but_not_below_used(operator, data) -> None:
    quota = data["providerquota"]
    url = _url(quota, "change/")
    response = operator.post(url, {"limit": "5000"})
    assert response.status_code == 302, response.content
    quota.refresh_from_db()
    assert (quota.limit, quota.used) == (5000, 100)
    entry = AuditLogEntry.objects.filter(action="quota.update").get()
    assert entry.changes == {"limit": 5000}

    response = operator.post(url, {"limit": "50"})
    assert response.status_code == 200
    assert "already used" in response.content.decode()
    response = operator.post(url, {"limit": "-5"})
    assert response.status_code == 200
    quota.refresh_from_db()
    assert quota.limit == 5000

    assert operator.post(url, {"limit": "-1"}).status_code == 302
    quota.refresh_from_db()
    assert quota.limit == -1
    assert operator.post(_url(quota, "delete/"), {"post": "yes"}).status_code == 403


def test_quotas_can_be_added(operator, tenant) -> None:
    assert operator.get("/admin/providers/providerquota/add/").status_code == 200
    response = operator.post(
        "/admin/providers/providerquota/add/",
        {"tenant": tenant.pk, "provider": "anthropic", "quota_type": "paid", "limit": "42"},
    )
    assert response.status_code == 302, response.content
    quota = ProviderQuota.objects.get(tenant=tenant, provider="anthropic")
    assert (quota.quota_type, quota.limit, quota.used) == ("paid", 42, 0)

    again = operator.post(
        "/admin/providers/providerquota/add/",
        {"tenant": tenant.pk, "provider": "anthropic", "quota_type": "paid", "limit": "1"},
    )
    assert again.status_code == 200  # the duplicate is a form error, not a 500
    unknown = operator.post(
        "/admin/providers/providerquota/add/",
        {"tenant": tenant.pk, "provider": "nope", "quota_type": "free", "limit": "1"},
    )
    assert unknown.status_code == 200
    assert ProviderQuota.objects.filter(tenant=tenant).count() == 1


def test_lb_entry_weight_and_enabled_are_editable(operator, data) -> None:
    entry = data["loadbalancingentry"]
    url = _url(entry, "change/")
    hint = entry.masked["openai_api_key"]
    # The hint sent back keeps the secret; an unchecked box: disabled.
    response = operator.post(url, {"weight": "7", "openai_api_key": hint})
    assert response.status_code == 302, response.content
    entry.refresh_from_db()
    assert (entry.weight, entry.enabled) == (7, False)
    assert credentials.reveal(entry)["openai_api_key"] == LB_SECRET
    response = operator.post(url, {"weight": "0", "enabled": "on", "openai_api_key": hint})
    assert response.status_code == 200
    assert "Give a weight from 1 to 100." in response.content.decode()
    entry.refresh_from_db()
    assert entry.weight == 7


def test_disabling_a_model_setting_goes_through_the_service(operator, data, tenant) -> None:
    setting = data["modelsetting"]
    assert DefaultModel.objects.filter(tenant=tenant).exists()
    response = operator.post(_url(setting, "change/"), {"load_balancing_enabled": "on"})
    assert response.status_code == 302, response.content
    setting = ModelSetting.objects.get(pk=setting.pk)
    assert (setting.enabled, setting.load_balancing_enabled) == (False, True)
    # The default that named the now-disabled model is dropped, as the product does.
    assert not DefaultModel.objects.filter(tenant=tenant).exists()
    assert AuditLogEntry.objects.filter(action="model.update").exists()


def test_a_workspace_without_secrets_rotates_too(operator, tenant) -> None:
    response = operator.post(
        "/admin/tenants/tenant/",
        {"action": "rotate_key_pair", "_selected_action": [tenant.pk]},
        follow=True,
    )
    assert "re-encrypted 0 secret(s)" in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).key_version == 2
