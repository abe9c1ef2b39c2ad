"""The Vertex AI fake is trusted because the official clients talk to it: `google-genai` in
Vertex mode, with `google-auth` exchanging a service account's signed JWT at the fake's token
endpoint, and `anthropic`'s AnthropicVertex for Claude. A bad signature or an expired assertion
is refused as Google refuses it, and the clients raise their own errors for the fake's bodies."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode

import google.auth.exceptions
import google.auth.transport.requests
import jwt
import pytest
import urllib3
from anthropic import AnthropicVertex
from google import genai
from google.genai import errors, types
from google.oauth2 import service_account as google_service_account

from tests.fakes.base import embed_text
from tests.fakes.vertex_ai_server import AUDIENCE, JWT_BEARER, SCOPE, VertexFake, service_account

# A Client closes its connections when it is collected: tests keep theirs in a variable.


@pytest.fixture(scope="module")
def fake():
    with VertexFake() as server:
        yield server


def credentials(fake: VertexFake, seed: int = 0) -> google_service_account.Credentials:
    info = service_account("fake-project", token_uri=fake.token_url, seed=seed)
    return google_service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])


def client(fake: VertexFake, seed: int = 0, project: str = "fake-project") -> genai.Client:
    return genai.Client(
        vertexai=True,
        project=project,
        location="us-central1",
        credentials=credentials(fake, seed),
        http_options=types.HttpOptions(
            base_url=fake.url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def test_generate_content_after_the_token_exchange(fake) -> None:
    exchanges = len(fake.token_requests)
    vertex = client(fake)
    reply = vertex.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello there",
        config=types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=50),
    )
    assert reply.text == "You said: hello there"
    assert len(fake.token_requests) == exchanges + 1
    sent = fake.received[-1]
    assert sent.path.endswith(
        "/projects/fake-project/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert sent.header("authorization").removeprefix("Bearer ") in fake.tokens
    grant = parse_qs(fake.token_requests[-1].body.decode())
    assert grant["grant_type"] == [JWT_BEARER]


def test_streaming_and_tool_calls(fake) -> None:
    vertex = client(fake)
    chunks = list(vertex.models.generate_content_stream(model="gemini-2.5-flash", contents="a b"))
    assert "".join(c.text or "" for c in chunks) == "You said: a b"
    search = types.FunctionDeclaration(
        name="search", parameters_json_schema={"type": "object", "properties": {}}
    )
    reply = vertex.models.generate_content(
        model="gemini-2.5-flash",
        contents="find cats",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[search])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    assert reply.function_calls[0].args == {"query": "find cats"}


def test_embeddings_through_predict(fake) -> None:
    vertex = client(fake)
    reply = vertex.models.embed_content(model="text-embedding-005", contents=["a", "b c"])
    assert [e.values for e in reply.embeddings] == [embed_text("a"), embed_text("b c")]
    assert fake.received[-1].path.endswith("text-embedding-005:predict")


def test_claude_through_anthropic_vertex(fake) -> None:
    creds = credentials(fake)
    creds.refresh(google.auth.transport.requests.Request())
    claude = AnthropicVertex(
        region="us-east5",
        project_id="fake-project",
        access_token=creds.token,
        base_url=f"{fake.url}/v1",
        max_retries=0,
    )
    message = claude.messages.create(
        model="claude-sonnet-4-5@20250929",
        max_tokens=50,
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.content[0].text == "You said: hello there"
    assert fake.received[-1].path.endswith("claude-sonnet-4-5@20250929:rawPredict")
    assert fake.received[-1].json()["anthropic_version"]  # in the body, not a header
    with claude.messages.stream(
        model="claude-sonnet-4-5@20250929",
        max_tokens=50,
        messages=[{"role": "user", "content": "one two"}],
    ) as stream:
        assert stream.get_final_text() == "You said: one two"
    assert fake.received[-1].path.endswith(":streamRawPredict")


def test_a_key_the_fake_does_not_know_is_refused_at_the_exchange(fake) -> None:
    """Another key for the same account email: the signature does not verify."""
    info = service_account("fake-project", token_uri=fake.token_url, seed=1)
    info["client_email"] = service_account("fake-project", seed=0)["client_email"]
    forged = google_service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    with pytest.raises(google.auth.exceptions.RefreshError, match="Invalid JWT Signature"):
        forged.refresh(google.auth.transport.requests.Request())


def test_an_expired_assertion_is_refused(fake) -> None:
    info = service_account("fake-project", token_uri=fake.token_url)
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": info["client_email"], "scope": SCOPE, "aud": AUDIENCE,
         "iat": now - 7200, "exp": now - 3600},
        info["private_key"],
        "RS256",
    )  # fmt: skip
    answer = urllib3.request(
        "POST",
        fake.token_url,
        body=urlencode({"grant_type": JWT_BEARER, "assertion": assertion}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"


def test_errors_come_as_the_clients_typed_errors(fake) -> None:
    vertex = client(fake)
    vertex.models.generate_content(model="gemini-2.5-flash", contents="hi")  # signed in
    fake.expire_tokens()
    with pytest.raises(errors.ClientError) as expired:
        vertex.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (expired.value.code, expired.value.status) == (401, "UNAUTHENTICATED")
    other = client(fake, project="someone-else")
    with pytest.raises(errors.ClientError) as denied:
        other.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (denied.value.code, denied.value.status) == (403, "PERMISSION_DENIED")
    renewed = client(fake)  # google-auth keeps a token until its own clock says it expired
    with pytest.raises(errors.ClientError) as missing:
        renewed.models.generate_content(model="gemini-0-nope", contents="hi")
    assert missing.value.code == 404
