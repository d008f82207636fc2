"""What every AWS adapter shares: one translation of botocore's errors into the pipeline's.

A botocore ``ClientError`` becomes :class:`~pipeline.errors.ToolFailed` naming the API call, the AWS error
code and what to do; missing credentials become :class:`~pipeline.errors.EnvironmentProblem`; network and
configuration errors name the settings to check. What may well answer next time (throttling, a 5xx, the
network; botocore's standard retries already spent) is :class:`~pipeline.errors.ServiceBusy`, so a caller
that watches a rollout can look again instead of calling it failed. botocore is imported only when a call
is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.errors import EnvironmentProblem, ServiceBusy, ToolFailed

CREDENTIALS_HINT = (
    "give boto3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "or an instance/task role"
)

_HINTS = {
    "ClusterNotFoundException": "check deploy.ecs.cluster and deploy.ecs.region",
    "ServiceNotFoundException": "check deploy.ecs.service (and that it is ACTIVE in deploy.ecs.cluster)",
    "ServiceNotActiveException": "check deploy.ecs.service (and that it is ACTIVE in deploy.ecs.cluster)",
    "ExpiredTokenException": "refresh the AWS credentials",
    "RequestExpired": "refresh the AWS credentials",
}
_PERMISSIONS = {
    "ECS": "the actions of the README's IAM policy (ecs:DescribeServices, ecs:DescribeTaskDefinition, "
    "ecs:RegisterTaskDefinition, ecs:TagResource, ecs:UpdateService, ...) and iam:PassRole on the task roles",
    "ECR": "ecr:GetAuthorizationToken and the ecr push permissions on the repository",
}
_DENIED = {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"}
# botocore's own list of throttling codes (botocore.retries.standard) and the server-side ones.
_BUSY = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
}


@contextmanager
def aws_call(service: str, what: str) -> Iterator[None]:
    """Run one AWS API call of ``service`` (``"ECS"``), translating its errors."""
    from botocore import exceptions as boto

    try:
        yield
    except boto.NoCredentialsError:
        raise EnvironmentProblem(
            f"{service} {what}: no AWS credentials found", hint=CREDENTIALS_HINT
        ) from None
    except boto.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", str(exc))
        if code in _DENIED:
            hint = f"the AWS identity needs {_PERMISSIONS.get(service, 'permission for this call')}"
        else:
            hint = _HINTS.get(code, "see the AWS error above")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        kind = ServiceBusy if code in _BUSY or status >= 500 else ToolFailed
        raise kind(f"{service} {what} failed: {code}: {message}", hint=hint) from None
    except (boto.ConnectionError, boto.HTTPClientError) as exc:  # refused, reset, read timeout, ...
        raise ServiceBusy(
            f"{service} {what} failed: {exc}",
            hint="check the region, the endpoint (deploy.ecs.endpoint_url, AWS_ENDPOINT_URL) and the network",
        ) from None
    except boto.BotoCoreError as exc:  # bad region, bad configuration, ...
        raise ToolFailed(
            f"{service} {what} failed: {exc}",
            hint="check the region, the endpoint (deploy.ecs.endpoint_url, AWS_ENDPOINT_URL) and the network",
        ) from None
