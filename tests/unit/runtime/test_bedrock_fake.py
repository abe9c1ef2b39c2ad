"""The Bedrock fake is what Bedrock Runtime is to boto3: boto3's own "bedrock-runtime" client (its
SigV4 signer, its Bearer-token mode, its event stream parser and its error parsing) talks to it
as it talks to AWS."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.base import embed_text
from tests.fakes.bedrock_server import BedrockFake

ACCESS_KEY, SECRET = "AKIDBEDROCKTEST00001", "bedrock/secret+key/0000000000000000000001"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def fake():
    with BedrockFake({ACCESS_KEY: SECRET}, api_keys=(API_KEY,), region="eu-west-1") as server:
        yield server


def client(fake, secret: str = SECRET, region: str = "eu-west-1", key: str = ACCESS_KEY):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=fake.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=ONCE,
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def test_converse_with_system_and_inference_config(fake) -> None:
    reply = client(fake).converse(
        modelId=CLAUDE,
        messages=user("hello there"),
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 2, "temperature": 0.5},
    )
    assert reply["output"]["message"]["content"] == [{"text": "You said:"}]
    assert reply["stopReason"] == "max_tokens"
    assert reply["usage"] == {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6}
    sent = fake.received[-1]
    assert sent.path == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    assert "/eu-west-1/bedrock/aws4_request" in sent.header("authorization")


def test_converse_stream_events_and_tool_use_round_trip(fake) -> None:
    tools = {"tools": [{"toolSpec": {"name": "search", "inputSchema": {"json": {}}}}]}
    stream = client(fake).converse_stream(
        modelId="amazon.nova-pro-v1:0", messages=user("weather?"), toolConfig=tools
    )["stream"]
    events = list(stream)
    assert next(iter(events[0])) == "messageStart"
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    use = start["start"]["toolUse"]
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    assert (use["name"], json.loads(arguments)) == ("search", {"query": "weather?"})
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 1

    answer = client(fake).converse(
        modelId="amazon.nova-pro-v1:0",
        messages=[
            *user("weather?"),
            {"role": "assistant", "content": [{"toolUse": {**use, "input": {"q": "x"}}}]},
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "sunny"}]}}
                ],
            },
        ],
        toolConfig=tools,
    )
    assert answer["output"]["message"]["content"] == [{"text": "Tool said: sunny"}]


def test_stream_text_adds_up(fake) -> None:
    events = client(fake).converse_stream(modelId=CLAUDE, messages=user("a b c"))["stream"]
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "You said: a b c"


def test_invoke_model_titan_and_cohere_embeddings(fake) -> None:
    titan = client(fake).invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "hello world"})
    )
    data = json.loads(titan["body"].read())
    assert data["embedding"] == embed_text("hello world")
    assert data["inputTextTokenCount"] == 2
    cohere = client(fake).invoke_model(
        modelId="cohere.embed-multilingual-v3",
        body=json.dumps({"texts": ["a", "b"], "input_type": "search_query"}),
    )
    assert json.loads(cohere["body"].read())["embeddings"] == [embed_text("a"), embed_text("b")]
    headers = cohere["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "2"


@pytest.fixture(scope="module")
def tls_fake(tmp_path_factory):
    """The fake behind TLS: boto3 sends a Bearer key to https:// endpoints only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = BedrockFake({ACCESS_KEY: SECRET}, api_keys=(API_KEY,), region="eu-west-1")
    server.start()
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    yield server
    server.stop()


def bearer_client(fake, monkeypatch, key: str):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    url = fake.url.replace("http://", "https://")
    return boto3.client(
        "bedrock-runtime", endpoint_url=url, region_name="eu-west-1", config=ONCE, verify=False
    )


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # self-signed
def test_bearer_api_key_mode(tls_fake, monkeypatch) -> None:
    keyed = bearer_client(tls_fake, monkeypatch, API_KEY)
    assert keyed.converse(modelId=CLAUDE, messages=user("hi"))["stopReason"] == "end_turn"
    assert tls_fake.received[-1].header("authorization") == f"Bearer {API_KEY}"
    wrong = bearer_client(tls_fake, monkeypatch, "ABSKwrong")
    with pytest.raises(ClientError) as caught:
        wrong.converse(modelId=CLAUDE, messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        ({"secret": "wrong-secret"}, "InvalidSignatureException", "signature we calculated"),
        ({"key": "AKIDUNKNOWN000000000"}, "UnrecognizedClientException", "security token"),
        ({"region": "us-west-2"}, "InvalidSignatureException", "valid region"),
    ],
)
def test_auth_failures_are_aws_errors(fake, kwargs, code, words) -> None:
    with pytest.raises(ClientError) as caught:
        client(fake, **kwargs).converse(modelId=CLAUDE, messages=user("hi"))
    error = caught.value.response["Error"]
    assert (error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        code,
        403,
    )
    assert words in error["Message"]


def test_an_old_signature_has_expired(fake) -> None:
    fake.skew = timedelta(minutes=6)
    try:
        with pytest.raises(ClientError) as caught:
            client(fake).converse(modelId=CLAUDE, messages=user("hi"))
    finally:
        fake.skew = timedelta(0)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["Error"]["Message"].startswith("Signature expired")


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"role": "assistant", "content": [{"text": "hi"}]}], "start with a user message"),
        (user("a") + user("b"), "alternate"),
        (user(" "), "blank"),
        (
            [
                {
                    "role": "user",
                    "content": [{"toolResult": {"toolUseId": "x", "content": [{"text": "y"}]}}],
                }
            ],
            "toolConfig",
        ),
    ],
)
def test_bad_conversations_are_validation_exceptions(fake, messages, words) -> None:
    with pytest.raises(ClientError) as caught:
        client(fake).converse(modelId=CLAUDE, messages=messages)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert words in caught.value.response["Error"]["Message"]


def test_unknown_model_throttling_and_stream_failures(fake) -> None:
    with pytest.raises(ClientError) as caught:
        client(fake).converse(modelId="meta.nope-v1:0", messages=user("hi"))
    assert caught.value.response["Error"]["Message"] == "The provided model identifier is invalid."
    fake.fail("429", retry_after=0)
    with pytest.raises(ClientError) as caught:
        client(fake).converse(modelId=CLAUDE, messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    fake.fail("500")
    with pytest.raises(ClientError) as caught:
        client(fake).converse_stream(modelId=CLAUDE, messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "InternalServerException"


def test_an_exception_frame_mid_stream(fake) -> None:
    fake.fail("throttle_stream")
    stream = client(fake).converse_stream(modelId=CLAUDE, messages=user("hi"))["stream"]
    with pytest.raises(EventStreamError) as caught:
        list(stream)
    assert caught.value.response["Error"]["Code"] == "throttlingException"
