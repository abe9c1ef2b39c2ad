"""The README's provider table is the catalog's: made by `manage.py provider_table --write`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from providers import provider_table


def test_the_readme_table_is_not_stale() -> None:
    readme = provider_table.README.read_text(encoding="utf-8")
    assert provider_table.replaced(readme) == readme, (
        "README.md's provider table is stale: run `manage.py provider_table --write`."
    )


def test_the_table_has_a_row_per_provider_and_counts_what_can_be_called() -> None:
    table = provider_table.render()
    assert table.count("\n| ") == 2 + 45  # the header, its rule, a row per provider
    assert (
        "| Xorbits Inference | `xinference` | llm, text-embedding, rerank, speech2text, tts |"
        in table
    )
    assert "88 (provider, model type) pairs" in table


def test_the_command_prints_the_table_and_a_readme_without_markers_is_refused() -> None:
    out = io.StringIO()
    call_command("provider_table", stdout=out)
    assert out.getvalue().strip() == provider_table.render()
    with pytest.raises(ValueError, match="markers"):
        provider_table.replaced("# A README without the table\n")
