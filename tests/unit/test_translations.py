"""简体中文 is complete: every message of the .po is translated (none fuzzy), and the compiled .mo
the service loads says the same."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

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
