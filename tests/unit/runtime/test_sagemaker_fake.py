"""The SageMaker fake is what SageMaker Runtime is to boto3: boto3's own "sagemaker-runtime"
client (its SigV4 signer, its event stream parser, its error parsing) talks to it as to AWS."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.base import embed_text
from tests.fakes.sagemaker_server import SageMakerFake

ACCESS_KEY, SECRET = "AKIDSAGEMAKER0000001", "sagemaker/secret+key/00000000000000000001"
ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def fake():
    with SageMakerFake({ACCESS_KEY: SECRET}, region="ap-northeast-1") as server:
        yield server


def client(fake, secret: str = SECRET, key: str = ACCESS_KEY):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=fake.url,
        region_name="ap-northeast-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=ONCE,
    )


def invoke(fake, endpoint: str, body: dict, **kwargs) -> dict:
    reply = client(fake, **kwargs).invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json"
    )
    return json.loads(reply["Body"].read())


def test_chat_completion_through_invoke_endpoint(fake) -> None:
    body = {"model": "Qwen/Qwen3", "messages": [{"role": "user", "content": "hello there"}]}
    reply = invoke(fake, "chat-endpoint", body)
    assert reply["choices"][0]["message"]["content"] == "You said: hello there"
    assert reply["model"] == "Qwen/Qwen3"
    sent = fake.received[-1]
    assert sent.path == "/endpoints/chat-endpoint/invocations"
    assert "/ap-northeast-1/sagemaker/aws4_request" in sent.header("authorization")


def test_response_stream_payload_parts_carry_the_sse_text(fake) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a b c"}], "stream": True}
    reply = client(fake).invoke_endpoint_with_response_stream(
        EndpointName="chat-endpoint", Body=json.dumps(body), ContentType="application/json"
    )
    parts = [event["PayloadPart"]["Bytes"] for event in reply["Body"]]
    assert len(parts) > 3
    lines = [line for line in b"".join(parts).decode().split("\n") if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "You said: a b c"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_embedding_and_rerank_containers(fake) -> None:
    embedded = invoke(fake, "embed-endpoint", {"inputs": ["a", "b"], "is_query": False})
    assert embedded["embeddings"] == [embed_text("a"), embed_text("b")]
    ranked = invoke(
        fake, "rerank-endpoint", {"inputs": ["paris", "paris"], "docs": ["rome", "paris"]}
    )
    assert ranked["scores"] == [0.0, 1.0]
    single = invoke(fake, "rerank-endpoint", {"inputs": ["paris"], "docs": ["paris"]})
    assert single["scores"] == 1.0


def test_errors_are_sagemaker_errors(fake) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(fake, "nope", {})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        invoke(fake, "chat-endpoint", {"messages": []})
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["OriginalStatusCode"] == 400
    fake.fail("500")
    with pytest.raises(ClientError) as caught:
        invoke(fake, "embed-endpoint", {"inputs": ["a"]})
    assert caught.value.response["Error"]["Code"] == "InternalFailure"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "wrong-secret"}, "InvalidSignatureException"),
        ({"key": "AKIDUNKNOWN000000000"}, "UnrecognizedClientException"),
    ],
)
def test_auth_failures(fake, kwargs, code) -> None:
    with pytest.raises(ClientError) as caught:
        invoke(fake, "embed-endpoint", {"inputs": ["a"]}, **kwargs)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_signature_from_the_future_is_not_yet_current(fake) -> None:
    fake.skew = timedelta(minutes=-6)
    try:
        with pytest.raises(ClientError) as caught:
            invoke(fake, "embed-endpoint", {"inputs": ["a"]})
    finally:
        fake.skew = timedelta(0)
    assert caught.value.response["Error"]["Message"].startswith("Signature not yet current")


def test_assume_role_gives_temporary_credentials_that_sign(fake) -> None:
    role = "arn:aws:iam::210987654321:role/SageMakerInvoke"
    fake.serve_sts([role])
    sts = boto3.client(
        "sts",
        endpoint_url=fake.url,
        region_name="ap-northeast-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=ONCE,
    )
    issued = sts.assume_role(RoleArn=role, RoleSessionName="tests")["Credentials"]
    assert issued["AccessKeyId"].startswith("ASIA")
    temporary = boto3.client(
        "sagemaker-runtime",
        endpoint_url=fake.url,
        region_name="ap-northeast-1",
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
        config=ONCE,
    )
    reply = temporary.invoke_endpoint(
        EndpointName="embed-endpoint",
        Body=json.dumps({"inputs": ["a"]}),
        ContentType="application/json",
    )
    assert json.loads(reply["Body"].read())["embeddings"] == [embed_text("a")]
    assert fake.received[-1].header("x-amz-security-token") == issued["SessionToken"]
    with pytest.raises(ClientError) as caught:
        sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/Other", RoleSessionName="tests")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as caught:
        boto3.client(
            "sts",
            endpoint_url=fake.url,
            region_name="ap-northeast-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key="wrong",
            config=ONCE,
        ).assume_role(RoleArn=role, RoleSessionName="tests")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
