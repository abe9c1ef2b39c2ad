"""A validation job against a closed port ends with the failure in people's words (issue 13,
item 10): the job's error and the model's last error name host, port and cause, never urllib3's
"HTTPConnectionPool(...): Max retries exceeded"; and the model's card lists it."""

from __future__ import annotations

import socket

import pytest

from tests.jobs import finished

pytestmark = pytest.mark.usefixtures("celery_worker_thread")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_check_against_a_closed_port_says_connection_refused(key_client) -> None:
    client = key_client()
    port = closed_port()
    created = client.post(
        "/api/v1/model-providers/xinference/models",
        {
            "model": "qwen",
            "model_type": "llm",
            "credentials": {
                "server_url": f"http://127.0.0.1:{port}",
                "model_uid": "qwen2.5-instruct",
                "api_key": "xk-never-shown-0001",
                "max_retries": "0",
            },
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    model = created.json()
    job = client.post(f"/api/v1/model-providers/xinference/models/{model['id']}/validate")
    done = finished(client, f"/api/v1/validations/{job.json()['id']}")
    expected = f"Could not connect to 127.0.0.1:{port} (connection refused)."
    assert (done["status"], done["error_code"]) == ("failed", "connection"), done
    assert done["error_message"] == expected

    settled = client.get(f"/api/v1/model-providers/xinference/models/{model['id']}").json()
    assert settled["last_error"] == f"The check could not finish: {expected[:-1]}. Check again."
    for text in (done["error_message"], settled["last_error"]):
        assert "HTTPConnectionPool" not in text
        assert "xk-never-shown-0001" not in text
