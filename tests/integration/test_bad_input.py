"""Bad input gets a 4xx with a clear message on every entry point, never a 500: the settings
pages' htmx fragments (another workspace's id, a missing id, an unknown provider or action, a
non-integer parameter), NUL characters and lone surrogates in JSON bodies and query strings,
JSON nested past the depth limit, and malformed tool calls. Nothing is written or queued."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.wsgi import get_wsgi_application

from config import parsers
from invocations import gateway
from invocations.models import Invocation
from providers import services
from providers.models import ProviderCredential
from tenants import services as tenant_services
from tenants.models import Membership, Role

pytestmark = pytest.mark.django_db
P = "/settings/model-providers"
CHAT = {"model_type": "llm", "provider": "openai", "model": "gpt-4o-mini"}


@pytest.fixture
def ids(tenant, other_tenant, make_member) -> dict[str, int]:
    def credential(owner, name):
        return services.credential_create(
            tenant=owner,
            provider="openai",
            name=name,
            values={"openai_api_key": "sk-test-000000000000"},
            actor=None,
        ).id

    key, _ = tenant_services.api_key_create(tenant=other_tenant, name="k", scopes=["read"])
    member = make_member(other_tenant, Role.MEMBER)
    return {
        "mine": credential(tenant, "mine"),
        "theirs": credential(other_tenant, "theirs"),
        "their_key": key.id,
        "their_member": Membership.objects.get(user=member).id,
    }


@pytest.fixture
def openai(tenant) -> None:
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-test-000000000000"},
        actor=None,
    )


FRAGMENTS = [
    # (method, url, status): {name} is filled from the `ids` fixture.
    ("get", f"{P}/nope/card", 404),
    ("get", f"{P}/nope/setup", 404),
    ("post", f"{P}/nope/setup", 404),
    ("get", f"{P}/openai/setup?credential=abc", 400),
    ("post", f"{P}/openai/setup?credential=abc", 400),
    ("get", f"{P}/openai/setup?credential={{theirs}}", 404),
    ("post", f"{P}/openai/setup?credential={{theirs}}", 404),
    ("get", f"{P}/openai/setup?credential=99999", 404),
    ("post", f"{P}/openai/credentials/{{theirs}}/activate", 404),
    ("post", f"{P}/openai/credentials/{{theirs}}/delete", 404),
    ("post", f"{P}/openai/credentials/{{theirs}}/validate", 404),
    ("post", f"{P}/openai/credentials/99999/delete", 404),
    ("post", f"{P}/nope/credentials/{{mine}}/activate", 404),
    ("post", f"{P}/openai/credentials/{{mine}}/explode", 404),
    ("get", f"{P}/nope/models", 404),
    ("get", f"{P}/nope/models/add", 404),
    ("post", f"{P}/nope/models/add", 404),
    ("get", f"{P}/nope/models/x/load-balancing", 404),
    ("get", f"{P}/openai/models/nope/load-balancing", 404),
    ("post", f"{P}/openai/models/nope/load-balancing", 404),
    ("post", f"{P}/nope/models/x/enable", 404),
    ("post", f"{P}/openai/models/nope/enable", 404),
    ("post", f"{P}/openai/models/llm:gpt-4o-mini/explode", 404),
    ("post", "/settings/api-keys/{their_key}/revoke", 404),
    ("post", "/settings/api-keys/99999/revoke", 404),
    ("post", "/settings/members/{their_member}/role", 404),
    ("post", "/settings/members/99999/remove", 404),
]


@pytest.mark.parametrize(("method", "url", "status"), FRAGMENTS)
def test_fragments_answer_404_or_400_never_500(
    session_client, tenant, ids, method, url, status
) -> None:
    client = session_client(tenant, Role.OWNER)
    client.raise_request_exception = False
    response = getattr(client, method)(
        url.format(**ids), {"role": "admin"} if method == "post" else None
    )
    assert response.status_code == status, response.content[:300]
    assert ProviderCredential.objects.filter(id=ids["theirs"]).exists()
    assert ProviderCredential.objects.filter(id=ids["mine"], tenant=tenant).exists()


def _gateway(
    tenant, path: str, body: bytes = b"", query: str = "", content_type: str = "application/json"
) -> tuple[int, dict]:
    """One call through the /v1 gateway's WSGI app, in this process (so on the test's database)."""
    _, key = tenant_services.api_key_create(tenant=tenant, name="gw", scopes=["invoke", "read"])
    environ = {
        "REQUEST_METHOD": "POST" if body else "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    answered: list[str] = []
    chunks = gateway.mount(get_wsgi_application())(environ, lambda s, h: answered.append(s))
    return int(answered[0].split()[0]), json.loads(b"".join(chunks))


def _chat_body(**input_changes) -> dict:
    return {**CHAT, "input": {"messages": [{"role": "user", "content": "hi"}], **input_changes}}


# Bodies as text: NUL and lone surrogates can only come as JSON escapes.
NOT_TEXT_BODIES = {
    "NUL in message content": (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
        "messages.0.content",
    ),
    "lone surrogate in message content": (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}',
        "messages.0.content",
    ),
    "NUL in a parameter key": (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],'
        ' "metadata": {"a\\u0000": "1"}}',
        "metadata",
    ),
    "lone surrogate in a key": (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],'
        ' "\\udc00": 1}',
        "the body",
    ),
}


def _as_invocation(text: str) -> str:
    """The gateway body above as an /api/v1/invocations body (messages and parameters in input)."""
    data = json.loads(text)
    extra = {k: v for k, v in data.items() if k not in {"model", "messages"}}
    body = {**CHAT, "input": {"messages": data["messages"], "parameters": extra}}
    return json.dumps(body)


@pytest.mark.parametrize(("text", "where"), NOT_TEXT_BODIES.values(), ids=NOT_TEXT_BODIES)
def test_nul_and_lone_surrogates_in_json_are_a_400_on_the_api(
    key_client, openai, text, where
) -> None:
    response = key_client().post(
        "/api/v1/invocations", _as_invocation(text), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "parse_error"
    assert "NUL" in error["message"] or "surrogate" in error["message"]
    assert not Invocation.objects.exists()


@pytest.mark.parametrize(("text", "where"), NOT_TEXT_BODIES.values(), ids=NOT_TEXT_BODIES)
def test_nul_and_lone_surrogates_in_json_are_a_400_at_the_gateway(tenant, text, where) -> None:
    status, body = _gateway(tenant, "/v1/chat/completions", text.encode())
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert where in body["error"]["message"]


@pytest.mark.parametrize(
    ("field", "escape"),
    [("name", "\\u0000"), ("openai_api_key", "\\u0000"), ("openai_organization", "\\ud800")],
)
def test_a_credential_with_nul_or_a_lone_surrogate_is_refused_and_not_echoed(
    key_client, field, escape
) -> None:
    values = {"openai_api_key": "sk-secret-0000000000", "openai_organization": "org"}
    body = {"name": "n", "credentials": values}
    text = json.dumps(body).replace(f'"{field}": "', f'"{field}": "{escape}', 1)
    response = key_client().post(
        "/api/v1/model-providers/openai/credentials", text, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert b"sk-secret" not in response.content
    assert not ProviderCredential.objects.exists()


@pytest.mark.parametrize("depth", [parsers.MAX_DEPTH + 1, 5_000, 100_000])
def test_deep_json_is_a_400_on_the_api_and_at_the_gateway(tenant, key_client, depth) -> None:
    nested = "[" * depth + "]" * depth
    text = (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], '
        f'"metadata": {{"a": {nested}}}}}'
    )
    api = key_client().post(
        "/api/v1/invocations", _as_invocation(text) if depth < 500 else nested,
        content_type="application/json",
    )  # fmt: skip
    assert api.status_code == 400, api.content
    assert api.json()["error"]["message"] == f"JSON parse error - {parsers.TOO_DEEP}"
    status, body = _gateway(tenant, "/v1/chat/completions", text.encode())
    assert status == 400, body
    assert parsers.TOO_DEEP in body["error"]["message"]
    assert not Invocation.objects.exists()


def test_json_just_within_the_depth_limit_is_taken(key_client, openai) -> None:
    nested = "[" * (parsers.MAX_DEPTH - 4) + "]" * (parsers.MAX_DEPTH - 4)
    body = _chat_body(response_format={"a": json.loads(nested)})  # a parameter must be known
    response = key_client().post("/api/v1/invocations", body, format="json")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize("digits", [parsers.MAX_INT_DIGITS + 1, 5_000])
def test_a_number_with_too_many_digits_is_a_400_in_our_words(tenant, key_client, digits) -> None:
    """Not Python's "use sys.set_int_max_str_digits() to increase the limit"."""
    text = f'{{"model": "openai/gpt-4o-mini", "messages": [], "max_tokens": {"9" * digits}}}'
    api = key_client().post("/api/v1/invocations", text, content_type="application/json")
    assert api.status_code == 400, api.content
    message = api.json()["error"]["message"]
    assert message.endswith(f"has more than {parsers.MAX_INT_DIGITS} digits.")
    assert "sys." not in message
    status, body = _gateway(tenant, "/v1/chat/completions", text.encode())
    assert status == 400, body
    assert "sys." not in body["error"]["message"]


QUERIES = ["status=%00", "x%00=1", "provider=%ED%A0%80", "q=%FF"]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize(
    "path", ["/api/v1/invocations", "/api/v1/usage", "/api/v1/audit-log", "/api/v1/models"]
)
def test_nul_or_non_utf8_in_a_query_string_is_a_json_400_on_the_api(key_client, path, query):
    response = key_client().get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert "query string" in response.json()["error"]["message"]


@pytest.mark.parametrize("query", QUERIES)
def test_nul_or_non_utf8_in_a_query_string_is_a_400_on_pages_and_the_gateway(
    session_client, tenant, query
) -> None:
    client = session_client(tenant, Role.OWNER)
    for path in ["/settings/usage/", f"{P}/openai/setup", "/settings/api-keys/"]:
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, path
        assert b"query string" in response.content
    status, body = _gateway(tenant, "/v1/models", query=query)
    assert (status, body["error"]["code"]) == (400, "invalid_query")


def test_a_well_formed_query_string_still_passes(key_client) -> None:
    """Non-ASCII text, properly encoded, is text."""
    assert key_client().get("/api/v1/invocations?model=%C3%A9t%C3%A9").status_code != 400


CALL = "input.messages.1.tool_calls"
BAD_TOOLS = [
    ({"tool_calls": [{"id": "c1"}]}, f"{CALL}.0.function"),
    ({"tool_calls": [{"id": "c1", "function": {}}]}, f"{CALL}.0.function.name"),
    (
        {"tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        f"{CALL}.0.function.arguments",
    ),
    ({"tool_calls": [{"type": "code", "function": {"name": "f"}}]}, f"{CALL}.0.type"),
    ({"tool_calls": ["f"]}, f"{CALL}.0"),
    ({"tool_calls": {"function": {"name": "f"}}}, CALL),
    ({"tools": [{"name": "bad name"}]}, "input.tools.0.name"),
    ({"tools": [{"name": "f", "parameters": []}]}, "input.tools.0.parameters"),
    ({"tools": [{"description": "no name"}]}, "input.tools.0.name"),
]


@pytest.mark.parametrize(("message_or_tools", "field"), BAD_TOOLS)
def test_malformed_tool_calls_and_tools_are_a_400_and_never_queued(
    key_client, openai, message_or_tools, field
) -> None:
    """A tool call without `function` used to be queued (202) and crash the worker."""
    assistant = {"role": "assistant", "content": ""}
    messages = [{"role": "user", "content": "x"}, assistant]
    if "tool_calls" in message_or_tools:
        assistant["tool_calls"] = message_or_tools["tool_calls"]
        body = _chat_body(messages=messages)
    else:
        body = _chat_body(**message_or_tools)
    response = key_client().post("/api/v1/invocations", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Invocation.objects.exists()


def test_a_well_formed_tool_call_is_queued_in_openais_shape(key_client, openai) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ]
    response = key_client().post(
        "/api/v1/invocations", _chat_body(messages=messages), format="json"
    )
    assert response.status_code == 202, response.content
    assert Invocation.objects.get().request["messages"][1]["tool_calls"] == [call]


@pytest.mark.parametrize("field", ["model", "prompt"])
def test_a_nul_in_a_gateway_form_field_is_a_400(tenant, field) -> None:
    form = {"model": "openai/whisper-1", "prompt": "p", field: "a\x00b"}
    boundary = "b0undary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in form.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\nRIFF....\r\n--{boundary}--\r\n"
    )
    status, body = _gateway(
        tenant,
        "/v1/audio/transcriptions",
        "".join(parts).encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert status == 400, body
    assert (body["error"]["param"], "NUL" in body["error"]["message"]) == (field, True)


@pytest.mark.parametrize(
    ("url", "form"),
    [
        (f"{P}/openai/setup", {"name": "a\x00", "openai_api_key": "sk-test-000000000000"}),
        (f"{P}/openai/setup", {"name": "n", "openai_api_key": "sk-secret\x00000000"}),
        (f"{P}/openai/models/add", {"model": "m\x00", "model_type": "llm"}),
        ("/settings/api-keys/create", {"name": "k\x00"}),
        ("/settings/members/invite", {"username\x00": "x"}),
    ],
)
def test_a_nul_in_a_page_form_is_a_400_and_saves_nothing(session_client, tenant, url, form):
    response = session_client(tenant, Role.OWNER).post(url, form)
    assert response.status_code == 400, response.content[:300]
    assert b"NUL" in response.content
    assert b"sk-secret" not in response.content
    assert not ProviderCredential.objects.exists()
