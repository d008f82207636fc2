"""The Docker engine, through docker-py: build, push, and the containers the smoke and deploy stages run.

``DockerEngine`` is the one object the stages hold; its methods live in one module per job:

- ``docker_streams``: what the engine's JSON stream chunks and error messages mean (pure, no docker-py):
  ``chunk_error``, ``is_auth_error``, ``is_connection_error``, the push digest, the hints.
- ``docker_core``: ``DockerConnection``, the docker-py client (``connect``, ``client``, ``version``), engine
  errors into the pipeline's exception tree (``_call``) and stream reading with cancellation (``_chunks``).
- ``docker_images``: ``ImagesMixin`` (build, image_id, image_labels, tag,
  remove_image), ``split_image_ref``, and ``context_files`` (a context as ``.dockerignore`` filters it).
- ``docker_push``: ``PushMixin`` (push with retries, distribution_digest).
- ``docker_containers``: ``ContainersMixin`` (run, inspect, state, logs, uid, stop/start/rename/remove,
  by label), ``ContainerState`` and ``free_port``.

docker-py is imported inside the methods that call it, so importing this module stays cheap (the CLI's
``--help`` does not load it).
"""

from __future__ import annotations

from pipeline.adapters.docker_containers import ContainersMixin
from pipeline.adapters.docker_images import ImagesMixin
from pipeline.adapters.docker_push import PushMixin


class DockerEngine(ImagesMixin, PushMixin, ContainersMixin):
    """One connection to a Docker engine; every method maps engine errors into the pipeline's tree."""
