"""The README's provider table, made from the built-in catalog and the adapter registry: one row
per provider with its model types, protocol family, whether it can be called, and the official
client that checked its family's fake. `manage.py provider_table --write` puts it between the
README's markers; a test fails when the README's copy is stale."""

from __future__ import annotations

from pathlib import Path

from providers import catalog
from providers.runtime import registry

START = "<!-- provider-table:start (made by `manage.py provider_table --write`) -->"
END = "<!-- provider-table:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def render() -> str:
    manifests = catalog.load((str(catalog.BUILTIN_DIR),))
    rows = [
        "| provider | key | model types | protocol family | callable | fake checked by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for manifest in sorted(manifests, key=lambda m: m.label.en_US.lower()):
        family = manifest.runtime.family
        callable_ = "yes" if family in registry.ADAPTERS else "not yet"
        rows.append(
            f"| {manifest.label.en_US} | `{manifest.provider}` | "
            f"{', '.join(manifest.supported_model_types)} | {family} | {callable_} | "
            f"{manifest.runtime.checked_by or '—'} |"
        )
    calls = sum(m.runtime.family in registry.ADAPTERS for m in manifests)
    pairs = sum(len(m.supported_model_types) for m in manifests)
    callable_pairs = sum(
        len(m.supported_model_types) for m in manifests if m.runtime.family in registry.ADAPTERS
    )
    summary = (
        f"{len(manifests)} providers, {calls} callable; {pairs} (provider, model type) pairs, "
        f"{callable_pairs} callable."
    )
    return "\n".join([START, "", summary, "", *rows, "", END])


def replaced(text: str) -> str:
    """`text` (the README) with its table made anew."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"The README has no {START!r} ... {END!r} markers.")
    return head + render() + tail
