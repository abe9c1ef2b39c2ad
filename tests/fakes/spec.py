"""How the catalog walk (tests/integration/test_catalog_walk.py) reaches a family's fake.

Every fake module of a family with an adapter exports `SPEC = FakeSpec(...)`. The walk configures
each catalog provider from a sample of its own credential form, starts `spec.serve(...)` with those
credentials and the models it will ask for, aims the endpoint at the fake, and validates and invokes
every model type the provider lists through the real adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from providers.runtime.base import Endpoint
from tests.fakes.base import FakeServer


def aim_base_url(path: str = "", argument: str = "base_url") -> Callable[[Endpoint, str], Endpoint]:
    """The usual aim: the fake's URL (plus `path`) as the credential `argument`, which the family
    reads as its base URL, and as the Endpoint's default base URL."""

    def aim(endpoint: Endpoint, url: str) -> Endpoint:
        return replace(
            endpoint,
            base_url=url + path,
            credentials={**endpoint.credentials, argument: url + path},
        )

    return aim


@dataclass(frozen=True)
class FakeSpec:
    family: str
    # The official client package that talks to this fake in a test (`test_<family>_fake.py`).
    client: str
    # (the endpoint's credentials, {model type: model}) -> a fake, not started, that accepts those
    # credentials the way the provider checks them and serves those models as those types.
    serve: Callable[[Mapping[str, str], Mapping[str, str]], FakeServer]
    # The endpoint, pointed at the fake's URL instead of the provider's cloud.
    aim: Callable[[Endpoint, str], Endpoint] = field(default_factory=aim_base_url)
    # Form values the generic samples cannot make (a service-account JSON, a key of a set shape),
    # by form variable.
    samples: Callable[[], Mapping[str, str]] = dict
    # The name the walk gives a custom model of a type, where the family wants a shape
    # (Replicate's and Hugging Face's owner/name).
    custom_model: str = "walk-{model_type}-model"
