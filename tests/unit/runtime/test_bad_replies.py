"""A reply of a shape the protocol does not have (a list for an object, a field of the wrong type,
nesting past Python's limit, absurd token counts) is a typed `bad_response` error, for every
method an adapter offers, listing included: never an exception of our own code."""

from __future__ import annotations

import pytest

from config import errors
from providers.runtime import http
from providers.runtime.base import ChatRequest, Endpoint, Message, Usage
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.base import FakeServer, Reply

PING = ChatRequest(messages=(Message("user", "hi"),))
SHAPES = [
    [1, 2, 3],
    {"choices": [1]},
    {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}},
    {"data": [1, None]},
    b"[" * 100_000,
]


class OddFake(FakeServer):
    def __init__(self, body) -> None:
        super().__init__(api_key=None)
        self.body = body
        for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
            self.route(method, path, lambda request: Reply(body=self.body))


def _adapter(fake: FakeServer) -> OpenAICompatAdapter:
    endpoint = Endpoint(
        base_url=f"{fake.url}/v1", timeouts=Timeouts(connect=2, read=5), retry=RetryPolicy(1)
    )
    return OpenAICompatAdapter(endpoint, http.pool())


@pytest.mark.parametrize("body", SHAPES, ids=["list", "choices", "tokens", "data", "deep"])
def test_an_odd_reply_is_a_typed_error(body) -> None:
    with OddFake(body) as fake:
        adapter = _adapter(fake)
        with pytest.raises(errors.UpstreamError) as caught:
            adapter.chat("m", PING)
        assert caught.value.code in {"bad_response", "server_unavailable"}, caught.value
        try:  # a listing without models in it may read as empty; anything else is typed
            listed: object = adapter.list_models()
        except errors.UpstreamError as exc:
            listed = exc.code
        assert isinstance(listed, list) or listed in {"bad_response", "server_unavailable"}


def test_token_counts_are_kept_in_the_columns_range() -> None:
    assert Usage(-1_000_000, 10**30) == Usage(0, 2**31 - 1)
    with pytest.raises(ValueError, match="invalid literal"):
        Usage("many", 1)  # type: ignore[arg-type]
