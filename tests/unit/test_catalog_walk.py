"""The whole catalog, pair by pair: every (provider, model type) the manifests list is configured
from a sample of the provider's own credential form, validated and invoked through the real adapter
against its family's fake, which checks the credentials as the provider does. A pair whose family
has no adapter, or no fake, fails."""

from __future__ import annotations

import pytest

from providers import selectors
from providers.runtime import registry
from tests.fakes.catalog import configure, invoke

PAIRS = [
    pytest.param(manifest.provider, model_type, id=f"{manifest.provider}-{model_type}")
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
