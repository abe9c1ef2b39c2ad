"""How the catalog walk (tests/unit/test_catalog_walk.py), the contract suite and the strictness
suite reach a family's fake.

Every fake module of a family with an adapter exports `SPEC = FakeSpec(...)`. The walk configures
each catalog provider from a sample of its own credential form, starts `spec.serve(...)` with those
credentials and the models it will ask for, aims the endpoint at the fake, and validates and invokes
every model type the provider lists through the real adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

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


def bearer(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Signed in as most providers want: `Authorization: Bearer <api_key>`."""
    return {**headers, "Authorization": f"Bearer {credentials.get('api_key', '')}"}


@dataclass(frozen=True)
class Refusal:
    """A request the provider refuses, and how it says so. The strictness suite
    (tests/unit/test_fake_strictness.py) sends it to the family's fake signed in as the provider
    wants (`FakeSpec.sign_in`) and checks the status and that the error body holds `says`."""

    label: str
    path: str  # from the fake's root; "{model}" is the model the fake serves, here and in `body`
    body: Any = None  # JSON, or bytes sent as they are
    status: int = 400
    says: str = ""  # words or an error code of the provider's error body
    method: str = "POST"
    # Over the signed-in headers; a value of None takes a header away (a refusal of bad auth).
    headers: Mapping[str, str | None] = field(default_factory=dict)
    model_type: str = "llm"  # the type of the model the fake serves for it


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
    # What the provider refuses (missing or wrong fields, bad auth, unknown models), each with
    # the provider's own status and words, and how a raw request signs in.
    refusals: tuple[Refusal, ...] = ()
    sign_in: Callable[[Mapping[str, str], str, str, bytes, dict[str, str]], dict[str, str]] = bearer
    # For a fake that does not take plain HTTP requests (Spark's WebSocket): (the fake, the
    # credentials, the model, the refusal) -> (the status or error code, the error text).
    refuse: Callable[[FakeServer, Mapping[str, str], str, Refusal], tuple[int, str]] | None = None
