"""credentials.clean_form's early SSRF check of URL fields: the same address policy as the guard
that judges every connection, applied to the URL's literal host, without any DNS lookup."""

from __future__ import annotations

import pytest

from config import errors
from providers import credentials, selectors


@pytest.fixture(scope="module")
def form():
    return selectors.catalog().get("xinference").model_credential_schema.fields


def problem(form, url: str) -> str | None:
    try:
        credentials.clean_form(form, {"server_url": url, "model_uid": "m"}, model_type="llm")
    except errors.InvalidInput as exc:
        return exc.fields["server_url"][0]
    return None


def test_private_networks_follow_the_setting(form, settings) -> None:
    for url in ("http://10.0.0.5:9997", "http://[fd12::5]:9997", "http://172.16.0.1:9997"):
        assert problem(form, url) is None
    settings.OUTBOUND_ALLOW_PRIVATE = False
    for url in (
        "http://10.0.0.5:9997",
        "http://[fd12::5]:9997",
        "http://172.16.0.1:9997",
        "http://167772165:9997",  # 10.0.0.5
        "http://[::ffff:10.0.0.5]:9997",
        "http://100.64.0.1:9997",
    ):
        assert problem(form, url) == (
            "This host cannot be used: private network addresses are not allowed on this server."
        ), url
    assert problem(form, "http://127.0.0.1:9997") is None  # loopback has its own setting
    assert problem(form, "http://models.internal:9997") is None  # a name: judged when connecting


def test_extra_denied_networks(form, settings) -> None:
    settings.OUTBOUND_DENY_NETWORKS = ["10.9.0.0/16", "2001:db8:1::/48"]
    assert problem(form, "http://10.9.3.4:9997") == (
        "This host cannot be used: 10.9.0.0/16 is denied on this server."
    )
    assert "2001:db8:1::/48 is denied" in problem(form, "http://[2001:db8:1::5]:9997")
    assert problem(form, "http://10.8.3.4:9997") is None


def test_metadata_stays_refused_whatever_the_settings(form, settings) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    settings.OUTBOUND_ALLOW_PRIVATE = True
    for url in ("http://169.254.169.254.", "http://metadata./", "http://[fd00:ec2::254]/"):
        assert "never allowed" in problem(form, url), url


@pytest.mark.parametrize(
    "url",
    [
        "http://169\u3002254\u3002169\u3002254/",  # ideographic full stops: IDNA makes them dots
        "http://\uff11\uff16\uff19.254.169.254/",  # full-width digits
        "http://[fd00:ec2::23]/",  # AWS's IPv6 instance services, not only ::254
    ],
)
def test_spellings_that_normalise_to_a_metadata_address_are_refused(form, url) -> None:
    assert problem(form, url) == (
        "This host cannot be used: cloud metadata addresses are never allowed."
    )


@pytest.mark.parametrize("url", ["http://host:99999/", "http://[::1/", "http://host:0/"])
def test_a_broken_url_is_a_field_error(form, url) -> None:
    assert problem(form, url) in {"Enter a valid URL.", "Enter a full http:// or https:// URL."}
