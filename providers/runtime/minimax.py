"""MiniMax: chat over its Anthropic-compatible Messages API ({endpoint}/anthropic/v1/messages,
what MiniMax recommends for the MiniMax-M models and what Dify validates with), embeddings over
its native API (POST {endpoint}/v1/embeddings?GroupId=<group>).

Credentials: `api_key` (sent as `x-api-key`, as the Anthropic SDK sends it, and as
`Authorization: Bearer`, which the native API needs), `group_id` (needed by embeddings only),
`base_url` (the endpoint: https://api.minimaxi.com in China, https://api.minimax.io elsewhere).
Options: `anthropic_path` (/anthropic), `batch_size` (texts per embedding request, the form's).

The chat is the Anthropic family's (`AnthropicAdapter`); the M models' `thinking` blocks are
left out of the answer as Anthropic's are. The native API answers HTTP 200 with
`base_resp: {status_code, status_msg}`; a non-zero code is an error: 1004 and 2049 auth, 1002
and 1039 rate limits, 1008 an empty balance, 2013 bad parameters, 1000/1001/1013/1027 the
server's own failures. The Anthropic route answers with Anthropic's statuses and error bodies,
but an unknown model is a 400 (2013) there, taken for the not-found it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from config import errors
from providers.runtime.anthropic import AnthropicAdapter
from providers.runtime.base import EmbeddingResult, TokenTally
from providers.runtime.http import Response

ANTHROPIC_PATH = "/anthropic"
DEFAULT_BATCH = 1  # the form's default
STATUS_CLASSES: dict[int, type[errors.UpstreamError]] = {
    1004: errors.UpstreamAuth,
    2049: errors.UpstreamAuth,
    1002: errors.UpstreamRateLimited,
    1039: errors.UpstreamRateLimited,
    1008: errors.UpstreamQuota,
    2013: errors.UpstreamBadRequest,
}


class MinimaxAdapter(AnthropicAdapter):
    family = "minimax"
    offers = frozenset({"chat", "stream", "embed"})

    def _anthropic_path(self) -> str:
        return "/" + str(self.endpoint.options.get("anthropic_path") or ANTHROPIC_PATH).strip("/")

    def base_url(self) -> str:
        """The endpoint's root: the Anthropic path and a /v1 a user typed are dropped."""
        base = (self.endpoint.credentials.get("base_url") or "").strip() or self.endpoint.base_url
        base = base.rstrip("/")
        for suffix in ("/v1", self._anthropic_path()):
            base = base.removesuffix(suffix)
        return base

    def target(
        self, path: str, fields: Any, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, Any] | None]:
        """The Anthropic family's paths live under the Anthropic path; native ones do not."""
        if path.startswith(("v1/messages", "v1/models")):
            return f"{self._anthropic_path().lstrip('/')}/{path}", params
        return path, params

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        api_key = self.endpoint.credentials.get("api_key")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        """MiniMax refuses an unknown model as a 400 "invalid params, unknown model '...'
        (2013)", where Anthropic answers 404."""
        if isinstance(failure, errors.UpstreamBadRequest) and "unknown model" in (
            failure.message.lower()
        ):
            return errors.UpstreamNotFound(failure.message)
        return super().classify(response, failure)

    # --- embeddings (the native API) ----------------------------------------------------------

    def _base_resp_error(self, data: Any) -> errors.UpstreamError | None:
        status = (data.get("base_resp") or {}) if isinstance(data, dict) else {}
        code = int(status.get("status_code") or 0)
        if code == 0:
            return None
        cls = STATUS_CLASSES.get(code, errors.UpstreamUnavailable)
        message = self.http.bounded(f"{status.get('status_msg') or 'error'} (status_code {code})")
        return cls(f"MiniMax refused the request: {message}")

    def embed(
        self, model: str, texts: Sequence[str], *, input_type: str | None = None
    ) -> EmbeddingResult:
        group_id = str(self.endpoint.credentials.get("group_id") or "").strip()
        if not group_id:
            raise errors.InvalidInput(
                "MiniMax embeddings need the Group ID.", fields={"minimax_group_id": ["required"]}
            )
        kind = "query" if str(input_type or "").lower() in ("query", "search_query") else "db"
        batch = max(1, int(self.endpoint.options.get("batch_size") or DEFAULT_BATCH))
        vectors: list[tuple[float, ...]] = []
        tally = TokenTally()
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            data = self.http.json(
                "POST",
                "v1/embeddings",
                params={"GroupId": group_id},
                json_body={"model": model, "texts": chunk, "type": kind},
            )
            failure = self._base_resp_error(data)
            if failure is not None:
                raise failure
            rows = data.get("vectors")
            if not isinstance(rows, list) or len(rows) != len(chunk):
                raise errors.UpstreamUnavailable(
                    f"Asked MiniMax for {len(chunk)} embeddings, got: "
                    f"{self.http.bounded(json.dumps(data), 200)}"
                )
            vectors.extend(tuple(float(x) for x in row) for row in rows)
            tally.add(data.get("total_tokens"), chunk)
        return EmbeddingResult(tuple(vectors), tally.usage)
