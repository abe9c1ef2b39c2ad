"""The outbound address guard end to end: a form refuses metadata and other refused addresses in
every literal spelling (400, field error); a host name passes the form (no DNS at save) but the
worker's validation and the web process's discovery refuse what it resolves to, connect to
nothing, and say why in the guard's own words (`forbidden_address`)."""

from __future__ import annotations

import re
import time

import pytest

from providers.models import CustomModel
from tests.fakes.xinference_server import XinferenceFake
from tests.jobs import finished

KEY = "xinf-guard-key-0007"
REFUSED_LOCALHOST = re.compile(
    r"^Refused to connect to localhost \((127\.0\.0\.1|::1)\): "
    r"loopback addresses are not allowed on this server\.$"
)


@pytest.fixture
def client(key_client):
    return key_client()


@pytest.fixture
def no_loopback(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False


def add_model(client, server_url: str):
    return client.post(
        "/api/v1/model-providers/xinference/models",
        {
            "model": "qwen2.5-instruct",
            "model_type": "llm",
            "credentials": {
                "server_url": server_url,
                "model_uid": "qwen2.5-instruct",
                "api_key": KEY,
            },
        },
        format="json",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.169.254./latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://metadata.google.internal./computeMetadata/v1/",
        "http://Metadata.Google.Internal/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://0:9997",
        "http://[::]:9997",
        "http://[fe80::1%25eth0]:9997",
    ],
)
def test_literal_bypass_forms_are_refused_when_saved(client, url) -> None:
    response = add_model(client, url)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == ["server_url"]
    assert error["fields"]["server_url"][0].startswith("This host cannot be used: ")
    assert "never allowed" in error["fields"]["server_url"][0]


@pytest.mark.django_db
@pytest.mark.usefixtures("no_loopback")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9997",
        "http://[::1]:9997",
        "http://[::ffff:127.0.0.1]:9997",
        "http://2130706433:9997",
        "http://127.1:9997",
        "http://0x7f.1:9997",
    ],
)
def test_loopback_literals_are_refused_when_saved_if_the_server_says_so(client, url) -> None:
    response = add_model(client, url)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {
        "server_url": [
            "This host cannot be used: loopback addresses are not allowed on this server."
        ]
    }


@pytest.mark.usefixtures("celery_worker_thread", "no_loopback")
def test_a_host_name_leading_to_a_refused_address_fails_validation_and_connects_nowhere(
    client,
) -> None:
    with XinferenceFake(api_key=KEY) as fake:
        url = f"http://localhost:{fake.url.rsplit(':', 1)[1]}"
        saved = add_model(client, url)
        assert saved.status_code == 201, saved.content  # a name: no DNS at save time
        model_url = f"/api/v1/model-providers/xinference/models/{saved.json()['id']}"
        deadline = time.monotonic() + 20
        while (model := client.get(model_url).json())["status"] == "validating":
            assert time.monotonic() < deadline, model
            time.sleep(0.05)
        assert model["status"] == "invalid"
        last_error = CustomModel.objects.get(pk=model["custom_model_id"]).last_error
        assert REFUSED_LOCALHOST.match(last_error), last_error

        job = client.post(f"{model_url}/validate")
        assert job.status_code == 202, job.content
        result = finished(client, f"/api/v1/validations/{job.json()['id']}")
        assert (result["valid"], result["error_code"]) == (False, "forbidden_address"), result
        assert REFUSED_LOCALHOST.match(result["error_message"]), result
        assert fake.received == []


@pytest.mark.django_db
@pytest.mark.usefixtures("no_loopback")
def test_discovery_refuses_in_the_web_process_too(client) -> None:
    with XinferenceFake(api_key=KEY) as fake:
        url = f"http://localhost:{fake.url.rsplit(':', 1)[1]}"
        response = client.post(
            "/api/v1/model-providers/xinference/discover",
            {"credentials": {"server_url": url, "api_key": KEY}},
            format="json",
        )
        assert response.status_code == 502, response.content
        error = response.json()["error"]
        assert error["code"] == "forbidden_address"
        assert REFUSED_LOCALHOST.match(error["message"]), error
        assert fake.received == []


@pytest.mark.django_db
def test_loopback_servers_stay_usable_by_default(client) -> None:
    """Self-hosted model servers live on loopback and private networks: allowed unless refused."""
    with XinferenceFake(api_key=KEY) as fake:
        url = f"http://localhost:{fake.url.rsplit(':', 1)[1]}"
        response = client.post(
            "/api/v1/model-providers/xinference/discover",
            {"credentials": {"server_url": url, "api_key": KEY}},
            format="json",
        )
        assert response.status_code == 200, response.content
        assert len(fake.received) == 1
