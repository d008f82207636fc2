"""The ECS adapter over real HTTP, against a small server that answers as the ECS API might once AWS has
added fields (botocore's parser then drops them without a word) or when an identity is denied a call.

Everything between the adapter and the wire is botocore's own: signing, the JSON protocol, the parser."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.ecs import EcsClient
from pipeline.config import load as load_config
from pipeline.errors import StageFailed
from pipeline.stages.targets.ecs import EcsTarget
from tests.conftest import ROOT

SERVICE_ARN = "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris"
TASK_DEFINITION_ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/iris:1"
CALLER = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    "<Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDA</UserId><Account>123456789012</Account>"
    "</GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
    "</GetCallerIdentityResponse>"
)


class FakeAws:
    """Answers ECS JSON calls from ``answers`` (by operation: a body, or (status, body)) and STS's
    GetCallerIdentity; records the operations called."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.called: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                if not target and b"Action=GetCallerIdentity" in body:
                    self._send(200, CALLER.encode(), "text/xml")
                    return
                operation = target.rsplit(".", 1)[-1]
                fake.called.append(operation)
                answer = fake.answers.get(operation, (400, {"__type": "UnknownOperationException"}))
                status, payload = answer if isinstance(answer, tuple) else (200, answer)
                self._send(status, json.dumps(payload).encode(), "application/x-amz-json-1.1")

            def _send(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    fake = FakeAws({})
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def task_definition(**extra: Any) -> dict[str, Any]:
    return {
        "taskDefinition": {
            "taskDefinitionArn": TASK_DEFINITION_ARN,
            "family": "iris",
            "revision": 1,
            "status": "ACTIVE",
            "containerDefinitions": [{"name": "iris-classifier", "image": "r.example/iris:1", "memory": 256}],
            **extra,
        },
        "tags": [{"key": "team", "value": "ml"}],
    }


def service(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceArn": SERVICE_ARN,
                "serviceName": "iris",
                "status": "ACTIVE",
                "taskDefinition": TASK_DEFINITION_ARN,
                "desiredCount": 2,
                "runningCount": 2,
                "deployments": [],
                "deploymentConfiguration": configuration or {},
            }
        ]
    }


def client(fake: FakeAws) -> EcsClient:
    return EcsClient(cluster="prod", service="iris", region="eu-west-1", endpoint_url=fake.url)


def config_for(fake: FakeAws, tmp_path: Path) -> Any:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
    sets = {
        "deploy.target": "ecs",
        "deploy.ecs.cluster": "prod",
        "deploy.ecs.service": "iris",
        "deploy.ecs.region": "eu-west-1",
        "deploy.ecs.endpoint_url": fake.url,
    }
    return load_config(tmp_path, overrides=[f"{k}={v}" for k, v in sets.items()], environ={})


def test_fields_botocore_does_not_know_are_reported_not_silently_dropped(fake_aws: FakeAws) -> None:
    future = {"futureIsolation": {"mode": "STRICT"}}
    fake_aws.answers["DescribeTaskDefinition"] = task_definition(
        **future,
        containerDefinitions=[{"name": "iris-classifier", "image": "r.example/iris:1", "gpuSharing": "on"}],
    )

    found = client(fake_aws).task_definition(TASK_DEFINITION_ARN)

    assert "futureIsolation" not in found.body  # botocore's parser dropped it: the reason for the check
    assert set(found.unknown) == {
        "taskDefinition.futureIsolation",
        "taskDefinition.containerDefinitions[].gpuSharing",
    }


def test_an_answer_with_only_known_fields_has_none_unknown(fake_aws: FakeAws) -> None:
    fake_aws.answers["DescribeTaskDefinition"] = task_definition(runtimePlatform={"cpuArchitecture": "ARM64"})

    assert not client(fake_aws).task_definition(TASK_DEFINITION_ARN).unknown


def test_deploy_refuses_to_copy_a_revision_it_would_lose_fields_of(fake_aws: FakeAws, tmp_path: Path) -> None:
    fake_aws.answers["DescribeServices"] = service()
    fake_aws.answers["DescribeTaskDefinition"] = task_definition(futureIsolation={"mode": "STRICT"})
    target = EcsTarget(config_for(fake_aws, tmp_path), lambda line: None)

    with pytest.raises(StageFailed) as caught:
        target.deploy("r.example/iris@sha256:" + "b" * 64, "run-1")

    assert caught.value.message.endswith(
        "has fields this botocore does not know, which a copy would lose: taskDefinition.futureIsolation"
    )
    assert "upgrade boto3 and botocore" in (caught.value.hint or "")
    assert "RegisterTaskDefinition" not in fake_aws.called


def test_the_preflight_finds_a_denied_service_deployment_call_before_a_native_deploy(
    fake_aws: FakeAws, tmp_path: Path
) -> None:
    fake_aws.answers["DescribeServices"] = service({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5})
    fake_aws.answers["DescribeTaskDefinition"] = task_definition()
    fake_aws.answers["ListServiceDeployments"] = (
        400,
        {
            "__type": "AccessDeniedException",
            "message": "not authorized to perform ecs:ListServiceDeployments",
        },
    )

    rows = {row.name: row for row in EcsTarget.checks(config_for(fake_aws, tmp_path))}

    denied = rows["ecs service deployments"]
    assert not denied.ok and denied.required
    assert "AccessDeniedException" in denied.detail
    assert "ecs:DescribeServiceDeployments, ecs:StopServiceDeployment" in denied.fix
    assert rows["ecs time budget"].ok
    assert "300 s bake (BLUE_GREEN, bake time 5 min" in rows["ecs time budget"].detail
