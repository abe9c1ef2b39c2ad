"""The whole catalog, pair by pair: every (provider, model type) the manifests list is configured
from a sample of the provider's own credential form, validated and invoked through the real adapter
against its family's fake, which checks the credentials as the provider does.

A pair whose family has no adapter yet is an expected failure (strict: it fails the day the
family lands without its fake being listed here); `WITHOUT_ADAPTER` may only shrink."""

from __future__ import annotations

import pytest

from providers import selectors
from providers.runtime import registry
from tests.fakes.catalog import SPECS, configure, invoke

# Families the catalog lists whose adapter is still to come (issue 12).
WITHOUT_ADAPTER: set[str] = set()

PAIRS = [
    pytest.param(
        manifest.provider,
        model_type,
        id=f"{manifest.provider}-{model_type}",
        marks=[pytest.mark.xfail(strict=True, reason="no adapter yet")]
        if manifest.runtime.family in WITHOUT_ADAPTER
        else [],
    )
    for manifest in selectors.catalog()
    for model_type in manifest.supported_model_types
]


@pytest.mark.parametrize(("provider", "model_type"), PAIRS)
def test_every_pair_validates_and_invokes_against_its_fake(provider, model_type) -> None:
    manifest = selectors.manifest_get(provider)
    family = manifest.runtime.family
    registry.adapter_class(family)  # raises for a family without an adapter
    pair = configure(provider, model_type)
    assert manifest.runtime.checked_by == pair.spec.client, "the manifest names the fake's checker"
    with pair.serve() as fake:
        adapter = pair.adapter(fake)
        adapter.validate(pair.model, model_type)
        marker = invoke(adapter, pair, f"walk {provider} {model_type}")
        assert fake.received, "the fake heard nothing"
        if marker:
            assert any(marker.encode() in r.body for r in fake.received), "our words never arrived"


def test_families_waiting_for_an_adapter_really_have_none() -> None:
    catalog_families = {m.runtime.family for m in selectors.catalog()}
    assert catalog_families >= WITHOUT_ADAPTER
    assert not WITHOUT_ADAPTER & set(registry.ADAPTERS)
    assert not WITHOUT_ADAPTER & set(SPECS)
