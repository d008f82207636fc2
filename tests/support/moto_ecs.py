"""``moto_server``, corrected where moto's ECS differs from the real API in what the pipeline relies on.

Run as ``python -m tests.support.moto_ecs -H HOST -p PORT`` (moto_server's own options). Each correction
names where the real behaviour is documented:

- **UpdateService refuses an INACTIVE task definition** with ``ClientException: TaskDefinition is inactive``
  (AWS ECS API Reference, DeregisterTaskDefinition: "you can't update an existing service to reference an
  INACTIVE task definition"; the message as users see it: aws/aws-cdk#33195). moto accepts one.
- **A service keeps its ``deploymentConfiguration``** (strategy, bake times, lifecycle hooks) and
  DescribeServices returns it (API Reference, Service). moto 5.2 drops it.
- **ListServiceDeployments answers** (API Reference, ListServiceDeployments); moto 5.2 lacks the call. No
  service deployments are listed: moto makes none.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ecs import models, responses
from moto.ecs.exceptions import EcsClientException
from moto.server import main

# It patches moto's own classes, so it reaches into them: _get_param, _get_service.
# pylint: disable=protected-access

_original_update = models.EC2ContainerServiceBackend.update_service
_original_create = responses.EC2ContainerServiceResponse.create_service
_original_update_response = responses.EC2ContainerServiceResponse.update_service


def _update_service(self: Any, service_properties: dict[str, Any]) -> Any:
    task_definition = service_properties.get("task_definition")
    if task_definition and self.describe_task_definition(task_definition).status == "INACTIVE":
        raise EcsClientException("TaskDefinition is inactive")
    return _original_update(self, service_properties)


def _keep_configuration(handler: Any) -> Any:
    def call(self: Any) -> Any:
        result = handler(self)
        configuration = self._get_param("deploymentConfiguration")
        if configuration:
            name = self._get_param("serviceName") or self._get_param("service")
            cluster = self._get_param("cluster", "default")
            service = self.ecs_backend._get_service(cluster, name)
            service.deployment_configuration = configuration
        return result

    return call


def _list_service_deployments(self: Any) -> ActionResult:  # pylint: disable=unused-argument
    return ActionResult({"serviceDeployments": []})


models.EC2ContainerServiceBackend.update_service = _update_service
responses.EC2ContainerServiceResponse.create_service = _keep_configuration(_original_create)
responses.EC2ContainerServiceResponse.update_service = _keep_configuration(_original_update_response)
responses.EC2ContainerServiceResponse.list_service_deployments = _list_service_deployments

if __name__ == "__main__":
    main()
