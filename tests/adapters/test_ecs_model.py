"""The copy deploy registers: everything of the running revision, one image changed, tags kept.

The "running revision" is a DescribeTaskDefinition answer with every field of the pinned botocore's model
filled in (botocore's own ``ArgumentGenerator``), so a field AWS added is in it, and the arguments are
checked against RegisterTaskDefinition's input model the way botocore checks a real call.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.utils import ArgumentGenerator
from botocore.validate import ParamValidator

from pipeline.adapters.ecs import EcsClient
from pipeline.adapters.ecs_model import PREVIOUS_TAG, SERVICE_TAG, TaskDefinition, with_image
from pipeline.errors import StageFailed

NEW_IMAGE = "r.example/iris@sha256:" + "b" * 64


def ecs_client() -> EcsClient:
    boto = boto3.client("ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    return EcsClient(cluster="prod", service="iris", region="eu-west-1", boto_client=boto)


def full_describe_answer() -> dict[str, Any]:
    """DescribeTaskDefinition's output with every member of the model present, as botocore shapes it."""
    model = boto3.client("ecs", region_name="eu-west-1").meta.service_model
    output = model.operation_model("DescribeTaskDefinition").output_shape
    answer = ArgumentGenerator(use_member_names=True).generate_skeleton(output)
    answer["taskDefinition"]["containerDefinitions"][0]["name"] = "iris-classifier"
    answer["taskDefinition"]["containerDefinitions"].append(
        {**answer["taskDefinition"]["containerDefinitions"][0], "name": "log-router", "image": "fluent-bit"}
    )
    answer["tags"] = [{"key": "team", "value": "ml"}, {"key": PREVIOUS_TAG, "value": "arn:old"}]
    return answer


def test_the_copy_keeps_every_field_register_takes_and_changes_only_the_image() -> None:
    answer = full_describe_answer()
    body = answer["taskDefinition"]
    current = TaskDefinition(body, tuple((t["key"], t["value"]) for t in answer["tags"]))
    accepted = ecs_client().register_fields()

    args = with_image(
        current,
        ("iris-classifier",),
        NEW_IMAGE,
        accepted=accepted,
        own_tags={SERVICE_TAG: "svc", PREVIOUS_TAG: "td:1"},
    )

    kept = set(body) & accepted
    assert "trustedExecutionConfiguration" in kept and "enableFaultInjection" in kept
    assert set(args) == kept | {"tags"}
    for key in kept - {"containerDefinitions"}:
        assert args[key] == body[key], key
    iris, router = args["containerDefinitions"]
    assert iris == {**body["containerDefinitions"][0], "image": NEW_IMAGE}
    assert router == body["containerDefinitions"][1]
    assert args["tags"] == [
        {"key": "team", "value": "ml"},
        {"key": SERVICE_TAG, "value": "svc"},
        {"key": PREVIOUS_TAG, "value": "td:1"},
    ]
    model = boto3.client("ecs", region_name="eu-west-1").meta.service_model
    report = ParamValidator().validate(args, model.operation_model("RegisterTaskDefinition").input_shape)
    problems = report.generate_report() if report.has_errors() else ""
    # the generated integers are 0, below some minimums; what matters is that register knows every field
    assert "Unknown parameter" not in problems and "Invalid type" not in problems, problems
    assert body["containerDefinitions"][0]["image"] != NEW_IMAGE  # the answer itself is not changed


def test_what_register_refuses_is_left_out() -> None:
    body = full_describe_answer()["taskDefinition"]

    args = with_image(
        TaskDefinition(body),
        ("iris-classifier",),
        NEW_IMAGE,
        accepted=ecs_client().register_fields(),
        own_tags={},
    )

    for bookkeeping in (
        "taskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "registeredBy",
        "compatibilities",
    ):
        assert bookkeeping in body and bookkeeping not in args


def test_a_container_that_is_not_there_is_named_with_the_ones_that_are() -> None:
    body = full_describe_answer()["taskDefinition"]

    with pytest.raises(StageFailed) as caught:
        with_image(TaskDefinition(body), ("web",), NEW_IMAGE, accepted={"containerDefinitions"}, own_tags={})

    assert "has no container 'web' (it has: iris-classifier, log-router)" in caught.value.message
