"""Provider cards summarise honestly (issue 13, item 3): counts over the provider's credentials and
custom models, the worst problem first, polling bounded in time; the search text holds the
catalog's and the workspace's model names (item 9)."""

from __future__ import annotations

import re
import time

import pytest

from providers import selectors
from providers.models import CheckStatus, CustomModel, ProviderCredential
from providers.templatetags import provider_ui
from tenants.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(tenant, make_member, client):
    client.force_login(make_member(tenant, Role.OWNER))
    return client


def custom(tenant, model: str, status: str, error: str = "", model_type: str = "llm"):
    return CustomModel.objects.create(
        tenant=tenant,
        provider="xinference",
        model=model,
        model_type=model_type,
        status=status,
        last_error=error,
    )


def credential(tenant, name: str, status: str, *, active: bool, error: str = ""):
    return ProviderCredential.objects.create(
        tenant=tenant,
        provider="openai",
        name=name,
        is_active=active,
        status=status,
        last_error=error,
    )


def test_one_invalid_model_among_valid_ones_is_counted_not_the_verdict(tenant) -> None:
    for name in ("a", "b", "c", "d"):
        custom(tenant, name, CheckStatus.VALID)
    custom(tenant, "typo", CheckStatus.INVALID, "404: Model not found in the model list")
    view = selectors.provider_get(tenant=tenant, provider="xinference")
    assert (view.checks.valid, view.checks.invalid, view.checks.total) == (4, 1, 5)
    assert view.status == "partial"
    assert provider_ui.check_summary(view) == "4 valid · 1 invalid"
    assert [(p.name, p.error) for p in view.problems] == [
        ("typo", "404: Model not found in the model list")
    ]
    assert view.last_error == "404: Model not found in the model list"


def test_a_check_under_way_is_counted_and_marks_the_card_as_checking(tenant) -> None:
    for name in ("a", "b", "c", "d"):
        custom(tenant, name, CheckStatus.VALID)
    custom(tenant, "bad", CheckStatus.INVALID, "401: no")
    custom(tenant, "new", CheckStatus.VALIDATING)
    view = selectors.provider_get(tenant=tenant, provider="xinference")
    assert view.checking
    assert view.status == CheckStatus.VALIDATING
    assert provider_ui.check_summary(view) == "4 valid · 1 invalid · 1 checking"


@pytest.mark.parametrize(
    ("statuses", "status", "summary"),
    [
        ([CheckStatus.VALID], "valid", "Valid"),
        ([CheckStatus.INVALID], "invalid", "Invalid"),
        ([CheckStatus.VALIDATING], "validating", "Checking…"),
        ([CheckStatus.UNCHECKED], "unchecked", "Unchecked"),
        ([CheckStatus.INVALID, CheckStatus.INVALID], "invalid", "2 invalid"),
        ([CheckStatus.VALID, CheckStatus.UNCHECKED], "valid", "1 valid · 1 unchecked"),
        ([], "unconfigured", None),
    ],
)
def test_the_status_follows_the_counts(tenant, statuses, status, summary) -> None:
    for number, check in enumerate(statuses):
        custom(tenant, f"m{number}", check)
    view = selectors.provider_get(tenant=tenant, provider="xinference")
    assert view.status == status
    if summary is not None:
        assert provider_ui.check_summary(view) == summary


def test_credentials_count_and_the_active_one_fails_first(tenant) -> None:
    """Every named credential counts; the active one's failure is the worst (every predefined
    model hangs on it), then failures before checks that could not finish."""
    credential(
        tenant,
        "backup",
        CheckStatus.UNCHECKED,
        active=False,
        error="The check could not finish: x.",
    )
    credential(tenant, "old", CheckStatus.INVALID, active=False, error="401: old key")
    credential(tenant, "team", CheckStatus.INVALID, active=True, error="401: revoked")
    credential(tenant, "spare", CheckStatus.VALID, active=False)
    view = selectors.provider_get(tenant=tenant, provider="openai")
    assert provider_ui.check_summary(view) == "1 valid · 2 invalid · 1 unchecked"
    assert view.status == "partial"
    assert [(p.name, p.active) for p in view.problems] == [
        ("team", True),
        ("old", False),
        ("backup", False),
    ]
    assert view.last_error == "401: revoked"


def _poll_delay(page: str) -> str | None:
    found = re.search(r'hx-trigger="load delay:(\d+)s"', page)
    return found.group(1) if found else None


def test_a_card_follows_its_checks_for_a_bounded_time(owner, tenant) -> None:
    custom(tenant, "qwen", CheckStatus.VALIDATING)
    url = "/settings/model-providers/xinference/card"
    fresh = owner.get(url).content.decode()
    assert _poll_delay(fresh) == "1"
    since = int(re.search(r"polling_since=(\d+)", fresh).group(1))
    assert abs(since - time.time()) < 5

    later = owner.get(f"{url}?polling_since={int(time.time()) - 60}").content.decode()
    assert _poll_delay(later) == str(provider_ui.CARD_POLL_SLOW)

    expired = f"{url}?polling_since={int(time.time()) - provider_ui.CARD_POLL_FOR - 1}"
    stopped = owner.get(expired).content.decode()
    assert _poll_delay(stopped) is None
    assert "data-poll-expired" in stopped
    assert "Refresh" in stopped

    # A refresh (no polling_since) follows the check again; nothing to check, no polling.
    assert _poll_delay(owner.get(url).content.decode()) == "1"
    CustomModel.objects.update(status=CheckStatus.VALID)
    done = owner.get(f"{url}?polling_since={int(time.time())}").content.decode()
    assert _poll_delay(done) is None
    assert "data-poll-expired" not in done


def test_a_forged_polling_start_cannot_extend_polling(owner, tenant) -> None:
    """A start in the future counts as now; garbage counts as now."""
    custom(tenant, "qwen", CheckStatus.VALIDATING)
    url = "/settings/model-providers/xinference/card"
    for value in (str(int(time.time()) + 10**6), "soon", ""):
        page = owner.get(f"{url}?polling_since={value}").content.decode()
        since = int(re.search(r"polling_since=(\d+)", page).group(1))
        assert since <= time.time() + 1


def test_the_card_lists_what_failed_with_its_error(owner, tenant) -> None:
    custom(tenant, "good", CheckStatus.VALID)
    custom(tenant, "typo", CheckStatus.INVALID, "404: Model typo not found", "text-embedding")
    page = owner.get("/settings/model-providers/xinference/card").content.decode()
    assert "1 valid · 1 invalid" in page
    assert '<details class="problems"' in page
    assert "404: Model typo not found" in page
    assert "Text embedding" in page  # the model type's name, not its key


def test_the_search_text_holds_catalog_and_workspace_model_names(tenant) -> None:
    custom(tenant, "my-private-llama", CheckStatus.VALID)
    texts = {
        v.manifest.provider: provider_ui.search_text(v)
        for v in selectors.provider_list(tenant=tenant)
    }
    assert {p for p, text in texts.items() if "claude" in text} >= {"anthropic", "bedrock"}
    assert "qwen" in texts["tongyi"]
    assert "my-private-llama" in texts["xinference"]
    assert "通义千问" in texts["tongyi"]
    assert texts["openai"] == texts["openai"].lower()
