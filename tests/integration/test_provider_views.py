# ruff: noqa: RUF001 -- 简体中文 punctuation is full-width
"""The provider settings pages' server side: forms from the schema, errors inline, secrets never
sent to the page, read-only roles refused, load-balancing entries."""

from __future__ import annotations

import re
import socket

import pytest
from django.conf import settings

from providers import credentials, selectors, services, validation, views
from providers.models import (
    CheckStatus,
    CustomModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ValidationJob,
)
from tenants.models import Role
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.django_db
SECRET = "sk-page-secret-0000009999"


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.OWNER))
    return client


@pytest.fixture
def member(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.MEMBER))
    return client


def test_the_page_lists_every_provider_and_the_defaults(owner) -> None:
    page = owner.get("/settings/model-providers/").content.decode()
    assert page.count('<article class="card') == len(selectors.catalog())
    assert 'id="default-text-embedding"' in page
    assert "System model settings" in page


def test_setup_form_is_generated_from_the_schema_with_inline_errors(owner) -> None:
    form = owner.get("/settings/model-providers/openai/setup").content.decode()
    assert 'name="openai_api_key"' in form
    assert 'type="password"' in form
    assert 'name="api_protocol"' in form  # a select from the manifest
    invalid = owner.post(
        "/settings/model-providers/openai/setup",
        {"name": "main", "openai_api_base": "api.openai.com/v1"},
    ).content.decode()
    assert "This field is required." in invalid
    assert "Enter a full http:// or https:// URL." in invalid
    assert not ProviderCredential.objects.exists()


def test_saving_returns_the_card_and_never_the_secret(owner) -> None:
    response = owner.post(
        "/settings/model-providers/openai/setup", {"name": "main", "openai_api_key": SECRET}
    )
    assert response.status_code == 200
    # The dialog stays open while the check the save queued runs, and refreshes the card.
    assert "Checking…" in response.content.decode()
    assert "card-openai" in response["HX-Trigger"]
    assert "close-dialog" not in response["HX-Trigger"]
    credential = ProviderCredential.objects.get()
    assert credential.is_active  # the provider's first credential is used at once
    edit = owner.get(f"/settings/model-providers/openai/setup?credential={credential.pk}")
    for page in (response, edit, owner.get("/settings/model-providers/")):
        assert SECRET not in page.content.decode()
    assert credentials.obfuscate(SECRET) in edit.content.decode()
    # Saving the edit form as shown (the hint sent back) keeps the secret.
    owner.post(
        "/settings/model-providers/openai/setup",
        {
            "credential": credential.pk,
            "name": "main",
            "openai_api_key": credentials.obfuscate(SECRET),
        },
    )
    credential.refresh_from_db()
    assert credentials.reveal(credential)["openai_api_key"] == SECRET


def test_members_read_but_every_change_is_403(tenant, member) -> None:
    services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    assert member.get("/settings/model-providers/").status_code == 200
    assert member.get("/settings/model-providers/openai/models").status_code == 200
    for url, data in [
        ("/settings/model-providers/openai/setup", {"openai_api_key": "x"}),
        ("/settings/model-providers/defaults", {"model_type": "llm", "choice": "openai/gpt-4o"}),
        (f"/settings/model-providers/openai/models/{gpt}/disable", {}),
        (f"/settings/model-providers/openai/models/{gpt}/load-balancing", {"action": "on"}),
        ("/settings/model-providers/xinference/models/add", {"model": "m"}),
    ]:
        assert member.post(url, data).status_code == 403, url


def test_load_balancing_entries_from_the_page(tenant, owner) -> None:
    named = services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    url = f"/settings/model-providers/openai/models/{gpt}/load-balancing"
    assert "No other entries yet." in owner.get(url).content.decode()
    owner.post(url, {"action": "on"})
    owner.post(url, {"action": "add", "name": "team", "weight": "3", "credential_id": named.pk})
    owner.post(
        url,
        {
            "action": "add",
            "name": "own",
            "weight": "1",
            "openai_api_key": "sk-own-lb-key-000000001",
        },
    )
    bad = owner.post(
        url, {"action": "add", "name": "heavy", "weight": "500", "credential_id": named.pk}
    ).content.decode()
    assert "Give a weight from 1 to 100." in bad
    entries = {e.name: e for e in LoadBalancingEntry.objects.all()}
    assert set(entries) == {"team", "own"}
    assert (entries["team"].weight, entries["team"].credential_id) == (3, named.pk)
    owner.post(url, {"action": "weight", "entry": entries["own"].pk, "weight": "7"})
    owner.post(url, {"action": "disable", "entry": entries["own"].pk})
    own = LoadBalancingEntry.objects.get(name="own")
    assert (own.weight, own.enabled) == (7, False)
    page = owner.get(url).content.decode()
    assert "sk-own-lb-key-000000001" not in page
    assert selectors.model_get(
        tenant=tenant, provider="openai", model_key=selectors.model_id("llm", "gpt-4o")
    ).load_balancing_enabled
    owner.post(url, {"action": "delete", "entry": own.pk})
    assert set(LoadBalancingEntry.objects.values_list("name", flat=True)) == {"team"}


def test_fallbacks_from_the_page(tenant, owner) -> None:
    services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    url = f"/settings/model-providers/openai/models/{gpt}/load-balancing"
    page = owner.get(url).content.decode()
    assert "No fallbacks." in page
    assert 'value="openai/gpt-4o-mini"' in page  # offered: usable llms of the workspace
    assert 'value="openai/gpt-4o"' not in page  # not itself
    owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4o-mini"})
    page = owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4.1"}).content
    assert 'data-fallback="openai/gpt-4o-mini"' in page.decode()
    assert "OpenAI · GPT-4o mini" in page.decode()  # named as people know it, not by its key
    owner.post(url, {"action": "fallback-up", "position": "1"})
    setting = ModelSetting.objects.get(model="gpt-4o")
    assert setting.fallbacks == [
        {"provider": "openai", "model": "gpt-4.1"},
        {"provider": "openai", "model": "gpt-4o-mini"},
    ]
    refused = owner.post(url, {"action": "fallback-add", "fallback": "openai/gpt-4.1"})
    assert "is listed twice" in refused.content.decode()
    assert "Invalid input." not in refused.content.decode()
    owner.post(url, {"action": "fallback-remove", "position": "0"})
    setting.refresh_from_db()
    assert setting.fallbacks == [{"provider": "openai", "model": "gpt-4o-mini"}]


def test_the_load_balancing_dialog_explains_stale_or_odd_values(session_client, tenant) -> None:
    """An entry another admin just deleted, a number that is no number, a huge fallback name:
    the dialog says what is wrong, never a 500 or a Python error, never echoes a page of input."""
    from providers import selectors, services

    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-dialog-0000000001"},
        actor=None,
    )
    owner = session_client(tenant, "owner")
    model_id = selectors.model_id("llm", "gpt-4o-mini")
    url = f"/settings/model-providers/openai/models/{model_id}/load-balancing"
    for form, expected in (
        ({"action": "weight", "entry": "999", "weight": "3"}, "no longer exists"),
        ({"action": "validate", "entry": "9" * 30}, "no longer exists"),
        ({"action": "validate", "entry": "abc"}, "Give a whole number."),
    ):
        page = owner.post(url, form)
        assert page.status_code == 200, form
        assert expected in page.content.decode()
        assert "invalid literal" not in page.content.decode()
    huge = owner.post(url, {"action": "fallback-add", "fallback": "openai/" + "x" * 5000})
    assert huge.status_code == 200
    assert "x" * 101 not in huge.content.decode()


# --- Checks in the dialogs (issue 13) -----------------------------------------------------------

GOOD_KEY = "sk-dialog-good-key-000001"
WRONG_KEY = "sk-dialog-wrong-key-00002"
SETUP = "/settings/model-providers/openai/setup"


@pytest.fixture
def openai_fake():
    with OpenAIFake(api_key=GOOD_KEY) as server:
        yield server


def _job_in(page: str) -> ValidationJob:
    """The check a dialog polls (its data-job)."""
    found = re.search(r'data-job="(\d+)"', page)
    assert found, "the dialog shows no check in progress"
    return ValidationJob.objects.get(pk=int(found.group(1)))


def _run(job: ValidationJob) -> ValidationJob:
    """What the worker does with the queued job (the task's body, run here)."""
    validation.validation_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def _poll(client, job: ValidationJob, polls: int = 0, then: str = "close"):
    return client.get(
        f"/settings/model-providers/{job.provider}/checks/{job.pk}",
        {"polls": polls, "then": then},
    )


def _working_credential(owner, fake) -> ProviderCredential:
    page = owner.post(
        SETUP, {"name": "main", "openai_api_key": GOOD_KEY, "openai_api_base": fake.url}
    )
    assert _run(_job_in(page.content.decode())).valid
    credential = ProviderCredential.objects.get(name="main")
    assert (credential.is_active, credential.status) == (True, CheckStatus.VALID)
    return credential


def test_a_wrong_key_never_replaces_the_working_credential(owner, openai_fake) -> None:
    """Editing the working active credential holds the new values until their check passes; a
    failing check leaves the old values in use and says why; "Save anyway" replaces them."""
    credential = _working_credential(owner, openai_fake)
    form = {
        "credential": credential.pk,
        "name": "main",
        "openai_api_key": WRONG_KEY,
        "openai_api_base": openai_fake.url,
    }
    page = owner.post(SETUP, form).content.decode()
    assert "Checking…" in page
    job = _job_in(page)
    assert job.purpose == validation.REVISION
    waiting = _poll(owner, job).content.decode()
    assert "Checking…" in waiting
    assert 'hx-trigger="every 1s"' in waiting
    credential.refresh_from_db()
    assert credential.status == CheckStatus.VALID  # still in use while the check runs
    assert not _run(job).valid
    credential.refresh_from_db()
    assert credential.status == CheckStatus.VALID
    assert credentials.reveal(credential)["openai_api_key"] == GOOD_KEY
    verdict = _poll(owner, job)
    text = verdict.content.decode()
    assert verdict["HX-Retarget"] == "#dialog-body"
    assert "OpenAI answered:" in text
    assert "Check failed" in text
    assert "Incorrect API key" in text
    assert "Save anyway" in text
    assert "The credentials in use stay as they were." in text
    assert WRONG_KEY not in text
    assert GOOD_KEY not in text
    assert credentials.obfuscate(WRONG_KEY) in text  # the form shows what failed, as a hint

    # Sent back as its hint, the held key is the one saved anyway.
    owner.post(SETUP, {**form, "openai_api_key": credentials.obfuscate(WRONG_KEY), "anyway": "1"})
    credential.refresh_from_db()
    assert credential.is_active
    assert credentials.reveal(credential)["openai_api_key"] == WRONG_KEY
    assert credential.pending_at is None


def test_a_revision_that_passes_replaces_the_values(owner, openai_fake) -> None:
    credential = _working_credential(owner, openai_fake)
    openai_fake.api_key = "sk-dialog-rotated-key-0003"
    page = owner.post(
        SETUP,
        {
            "credential": credential.pk,
            "name": "renamed",
            "openai_api_key": "sk-dialog-rotated-key-0003",
            "openai_api_base": openai_fake.url,
        },
    ).content.decode()
    assert _run(_job_in(page)).valid
    credential.refresh_from_db()
    assert credential.name == "renamed"
    assert credentials.reveal(credential)["openai_api_key"] == "sk-dialog-rotated-key-0003"
    assert (credential.status, credential.pending_at) == (CheckStatus.VALID, None)
    done = _poll(owner, ValidationJob.objects.filter(purpose="revision").get())
    assert "close-dialog" in done["HX-Trigger"]
    assert "card-openai" in done["HX-Trigger"]


def test_a_new_credential_takes_over_only_when_its_check_passes(owner, openai_fake) -> None:
    main = _working_credential(owner, openai_fake)
    page = owner.post(
        SETUP, {"name": "typo", "openai_api_key": WRONG_KEY, "openai_api_base": openai_fake.url}
    ).content.decode()
    job = _job_in(page)
    assert job.purpose == validation.TAKE_OVER
    assert not _run(job).valid
    main.refresh_from_db()
    assert main.is_active
    assert not ProviderCredential.objects.get(name="typo").is_active

    page = owner.post(
        SETUP, {"name": "spare", "openai_api_key": GOOD_KEY, "openai_api_base": openai_fake.url}
    ).content.decode()
    assert _run(_job_in(page)).valid
    assert ProviderCredential.objects.get(is_active=True).name == "spare"


def test_checks_in_a_dialog_are_polled_a_bounded_number_of_times(owner, openai_fake) -> None:
    page = owner.post(
        SETUP, {"name": "main", "openai_api_key": GOOD_KEY, "openai_api_base": openai_fake.url}
    ).content.decode()
    job = _job_in(page)
    last = _poll(owner, job, polls=views.MAX_POLLS - 1).content.decode()
    assert "every 1s" not in last
    assert "taking longer than expected" in last


def test_an_empty_add_model_form_shows_every_required_error_at_once(owner) -> None:
    page = owner.post(
        "/settings/model-providers/xinference/models/add", {"model_type": "llm"}
    ).content.decode()
    assert "A model needs a name." in page
    for field in ("f-server_url-error", "f-model_uid-error"):
        assert f'id="{field}"' in page, field
    assert page.count("This field is required.") >= 2
    assert not CustomModel.objects.exists()


def test_a_custom_model_is_edited_renamed_and_checked_again(tenant, owner) -> None:
    with XinferenceFake(api_key=None) as fake:
        custom = services.custom_model_create(
            tenant=tenant,
            provider="xinference",
            model="qwen",
            model_type="llm",
            values={"server_url": fake.url, "model_uid": "qwen2.5-instrukt"},
            actor=None,
        )
        _run(ValidationJob.objects.get(custom_model=custom))
        custom.refresh_from_db()
        assert custom.status == CheckStatus.INVALID
        view = selectors.model_get(
            tenant=tenant, provider="xinference", model_key=selectors.model_id("llm", "qwen")
        )
        services.model_setting_update(tenant=tenant, view=view, alias="chat", actor=None)
        url = "/settings/model-providers/xinference/models/add"
        form = owner.get(url, {"model": view.id, "then": "models"}).content.decode()
        assert 'value="qwen2.5-instrukt"' in form  # pre-filled
        assert "Edit the model qwen" in form
        page = owner.post(
            url,
            {
                "editing": view.id,
                "then": "models",
                "model": "qwen-chat",
                "server_url": fake.url,
                "model_uid": "qwen2.5-instruct",
            },
        ).content.decode()
        job = _job_in(page)
        assert _run(job).valid
    custom.refresh_from_db()
    assert (custom.model, custom.status) == ("qwen-chat", CheckStatus.VALID)
    assert custom.config["model_uid"] == "qwen2.5-instruct"
    assert ModelSetting.objects.get(tenant=tenant).model == "qwen-chat"  # the alias followed
    back = _poll(owner, job, then="models")
    assert back["HX-Retarget"] == "#dialog-body"
    assert 'data-model="qwen-chat"' in back.content.decode()


def test_a_server_never_reached_is_not_quoted_as_answering(owner) -> None:
    """A refused connection is what we could not do, not something the provider said."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the probe is
    page = owner.post(
        "/settings/model-providers/xinference/models/add",
        {
            "model": "qwen",
            "model_type": "llm",
            "server_url": f"http://127.0.0.1:{port}",
            "model_uid": "qwen2.5-instruct",
            "max_retries": "0",
        },
    ).content.decode()
    job = _run(_job_in(page))
    assert job.error_code == "connection"
    text = _poll(owner, job).content.decode()
    assert "Could not reach Xorbits Inference:" in text
    assert "Check not finished" in text  # as the model's status says: unchecked, not invalid
    assert f"Could not connect to 127.0.0.1:{port} (connection refused)." in text
    assert "answered" not in text
    owner.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"  # our sentences in the reader's words
    text = _poll(owner, job).content.decode()
    assert "无法连接 Xorbits Inference：" in text
    assert f"无法连接到 127.0.0.1:{port}（连接被拒绝）。" in text


def test_discover_and_import_from_the_dialog(owner) -> None:
    url = "/settings/model-providers/xinference/models/add"
    with XinferenceFake(api_key="xk-dialog-0001") as fake:
        form = {"model_type": "llm", "server_url": fake.url, "api_key": "xk-dialog-0001"}
        page = owner.post(url, {**form, "action": "discover"}).content.decode()
        assert 'data-found="qwen2.5-instruct"' in page
        assert 'data-found="bge-m3"' in page
        assert "xk-dialog-0001" not in page
        listed = owner.post(
            url,
            {
                **form,
                "action": "import",
                "import": ["llm:qwen2.5-instruct", "text-embedding:bge-m3"],
            },
        )
        assert 'data-model="bge-m3"' in listed.content.decode()
        for job in ValidationJob.objects.all():
            assert _run(job).valid
    assert set(CustomModel.objects.values_list("model", "status")) == {
        ("qwen2.5-instruct", CheckStatus.VALID),
        ("bge-m3", CheckStatus.VALID),
    }


def test_discovery_errors_read_inline(owner) -> None:
    url = "/settings/model-providers/xinference/models/add"
    down = owner.post(url, {"action": "discover", "server_url": "http://127.0.0.1:1"})
    assert down.status_code == 200
    assert "data-discovery-error" in down.content.decode()
    with XinferenceFake(api_key="xk-dialog-0001") as fake:
        wrong = owner.post(
            url, {"action": "discover", "server_url": fake.url, "api_key": "xk-wrong-key-0000"}
        )
    assert wrong.status_code == 200
    assert "The server could not be asked" in wrong.content.decode()
    nothing = owner.post(url, {"action": "import", "server_url": "http://127.0.0.1:1"})
    assert "Choose at least one model to import." in nothing.content.decode()


def test_a_load_balancing_entry_is_edited_and_weight_errors_read_once(tenant, owner) -> None:
    services.credential_create(
        tenant=tenant, provider="openai", name="main", values={"openai_api_key": SECRET}, actor=None
    )
    gpt = selectors.model_id("llm", "gpt-4o")
    url = f"/settings/model-providers/openai/models/{gpt}/load-balancing"
    owner.post(url, {"action": "add", "name": "own", "weight": "1", "openai_api_key": SECRET})
    entry = LoadBalancingEntry.objects.get()
    zero = owner.post(url, {"action": "add", "name": "x", "weight": "0"}).content.decode()
    assert "Give a weight from 1 to 100." in zero
    assert "Invalid input." not in zero
    form = owner.get(url, {"edit": entry.pk}).content.decode()
    assert "Edit the entry “own”" in form
    assert credentials.obfuscate(SECRET) in form
    assert SECRET not in form
    owner.post(
        url,
        {
            "action": "edit",
            "entry": entry.pk,
            "name": "team",
            "weight": "4",
            "openai_api_key": credentials.obfuscate(SECRET),
        },
    )
    entry.refresh_from_db()
    assert (entry.name, entry.weight) == ("team", 4)
    assert credentials.reveal(entry)["openai_api_key"] == SECRET  # the hint kept the key


def test_a_read_only_member_sees_the_credentials_without_a_form(tenant, member) -> None:
    page = member.get(SETUP).content.decode()
    assert "OpenAI credentials" in page
    assert "Set up OpenAI" not in page
    assert "<form" not in page
