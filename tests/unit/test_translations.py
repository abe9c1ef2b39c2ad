# ruff: noqa: RUF001 -- 简体中文 punctuation is full-width
"""简体中文 is complete: every message of the .po is translated (none fuzzy), the compiled .mo
the service loads says the same, and the address guard's refusals (worded without Django) reach
a form translated."""

from __future__ import annotations

import gettext
import ipaddress
import re
from pathlib import Path

from django.utils import translation

from providers import credentials
from providers.runtime import failures, netguard
from providers.templatetags import provider_ui

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"


def _entries() -> list[tuple[str, str, bool]]:
    entries = []
    for block in LOCALE.joinpath("django.po").read_text(encoding="utf-8").split("\n\n"):
        if "msgid" not in block or block.lstrip().startswith("#~"):
            continue
        msgid = "".join(re.findall(r'"(.*)"', block.split("msgid ", 1)[1].split("msgstr")[0]))
        if "msgid_plural" in block:
            msgid = msgid.split('"')[0]
            msgid = "".join(
                re.findall(r'"(.*)"', block.split("msgid ", 1)[1].split("msgid_plural")[0])
            )
        msgstr = "".join(
            re.findall(
                r'"(.*)"', re.split(r"msgstr(?:\[0\])? ", block, maxsplit=1)[1].split("msgstr[")[0]
            )
        )
        if msgid:
            entries.append((msgid, msgstr, "#, fuzzy" in block))
    return entries


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    entries = _entries()
    assert len(entries) > 200
    assert [m for m, s, _ in entries if not s] == []
    assert [m for m, _, fuzzy in entries if fuzzy] == []


def test_the_compiled_catalog_matches_the_source() -> None:
    with LOCALE.joinpath("django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    stale = [
        msgid
        for msgid, msgstr, _ in _entries()
        if "%(" not in msgid and "\\" not in msgid and catalog.gettext(msgid) != msgstr
    ]
    assert stale == [], "run: msgfmt -o locale/zh_Hans/LC_MESSAGES/django.mo <the .po>"


def test_every_refusal_of_the_address_guard_reads_in_simplified_chinese() -> None:
    """The guard (netguard, without Django) words its refusals in English; a URL field's error
    shows them translated: every refusal it can give, the composed ones included."""
    strict = netguard.AddressPolicy(
        allow_loopback=False,
        allow_private=False,
        denied_networks=(ipaddress.ip_network("203.0.113.0/24"),),
    )
    reasons = {netguard.refusal(network.network_address, strict) for network, _ in netguard._RANGES}
    reasons |= {
        netguard.name_refusal("metadata.google.internal"),
        netguard.refusal(ipaddress.ip_address("203.0.113.5"), strict),  # a denied network
        netguard.refusal(ipaddress.ip_address("2002:7f00:1::1"), strict),  # 6to4 to 127.0.0.1
    }
    assert None not in reasons
    assert len(reasons) >= 11
    with translation.override("zh-hans"):
        shown = {reason: credentials.refusal_words(reason) for reason in reasons}
    addresses = re.compile(r"[0-9a-f:.]+/\d+|\d+(?:\.\d+){3}")
    english = {r: s for r, s in shown.items() if re.search(r"[A-Za-z]", addresses.sub("", s))}
    assert english == {}, "list the refusal in providers/credentials.py REFUSALS, translate it"


def _parts(sentence: str) -> list[str]:
    return sorted(re.findall(r"\{(\w+)\}", sentence))


def test_our_failure_sentences_read_in_simplified_chinese_and_stay_english_otherwise() -> None:
    """Failure sentences are stored in English (failures.SENTENCES, without Django); the pages
    show each in the reader's language, keeping every part, and English as it was stored."""
    samples = {"target": "10.0.0.9:9997", "host": "example.invalid", "seconds": "5",
               "detail": "self-signed certificate", "reason": "connection refused",
               "message": "Could not connect to 10.0.0.9:9997 (connection refused)"}  # fmt: skip
    for sentence in failures.SENTENCES:
        said = sentence.format(**samples)
        with translation.override("en"):
            assert provider_ui.in_reader_language(said) == said
        with translation.override("zh-hans"):
            translated = translation.gettext(sentence)
            shown = provider_ui.in_reader_language(said)
        assert translated != sentence, sentence
        assert _parts(translated) == _parts(sentence), sentence
        assert shown != said, sentence
        left = re.sub(r"example\.invalid|self-signed certificate|https?://|TLS", "", shown)
        assert not re.search(r"[A-Za-z]{3,}", left), (sentence, shown)


def test_nested_failures_and_a_providers_own_words() -> None:
    with translation.override("zh-hans"):
        show = provider_ui.in_reader_language
        assert show("Could not connect to 127.0.0.1:1 (connection refused).") == (
            "无法连接到 127.0.0.1:1（连接被拒绝）。"
        )
        assert (
            show(
                "The check could not finish: Could not connect to [::1]:8080 in time (no answer "
                "within 5 s). Check again."
            )
            == "校验未能完成：未能及时连接到 [::1]:8080（5 秒内无应答）。请重新校验。"
        )
        # What a provider said stays its own; inside our sentence too.
        assert show("Incorrect API key provided.") == "Incorrect API key provided."
        assert show("The check could not finish: 429: Slow down. Check again.") == (
            "校验未能完成：429: Slow down。请重新校验。"
        )
