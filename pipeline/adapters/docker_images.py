"""Images in the Docker engine: build (reading its stream), look up, label, tag and remove; and what of a
build context the engine is sent (``.dockerignore``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.adapters.docker_core import DockerConnection
from pipeline.adapters.docker_streams import ENGINE_HINT, LineSink, chunk_error, first_line, noop
from pipeline.errors import EngineUnavailable, ToolFailed

_BUILT_ID = re.compile(r"Successfully built ([0-9a-f]+)")


def split_image_ref(ref: str) -> tuple[str, str]:
    """``registry:5000/name:tag`` -> (``registry:5000/name``, ``tag``); the tag defaults to ``latest``."""
    name, _, digest = ref.partition("@")
    if digest:
        return name, "latest"
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of ``context/.dockerignore`` (none without one), comments and blank lines left out."""
    ignore = context / ".dockerignore"
    if not ignore.exists():
        return []
    return [
        line.strip()
        for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def context_files(context: Path, patterns: Sequence[str], dockerfile: str) -> set[str]:
    """What of ``context`` a build sends the engine (files and folders, relative): docker-py's own reading
    of the ``.dockerignore`` ``patterns``, the Dockerfile always sent."""
    from docker.utils.build import exclude_paths

    return set(exclude_paths(str(context), list(patterns), dockerfile=dockerfile))


class ImagesMixin(DockerConnection):
    """Build, find, label, tag and remove local images."""

    def build(
        self,
        context_dir: Path | str,
        dockerfile: str,
        tags: Sequence[str],
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        *,
        log: LineSink,
        progress: LineSink | None = None,
        cancel: threading.Event | None = None,
        nocache: bool = False,
        pull: bool = False,
    ) -> str:
        """Build ``dockerfile`` in ``context_dir``, tag it with every tag and return the image id."""
        if not tags:
            raise ValueError("build needs at least one tag")
        progress = progress or noop
        stream = self._call(
            "build",
            lambda: self._client.api.build(
                path=str(context_dir),
                dockerfile=dockerfile,
                tag=tags[0],
                buildargs=dict(buildargs or {}),
                labels=dict(labels or {}),
                decode=True,
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=pull,
            ),
        )
        import requests

        try:
            image_id = self._read_build_stream(stream, log, progress, cancel)
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(
                f"lost the Docker engine during the build: {first_line(exc)}", hint=ENGINE_HINT
            ) from None
        for ref in tags[1:]:
            self.tag(image_id, ref)
        log(f"built {image_id} tagged {', '.join(tags)}")
        return image_id

    def _read_build_stream(
        self,
        stream: Iterator[Mapping[str, Any]],
        log: LineSink,
        progress: LineSink,
        cancel: threading.Event | None,
    ) -> str:
        """Log the build output; raise on the first error chunk; return the id the engine reported."""
        image_id = None
        for chunk in self._chunks(stream, "build", cancel):
            error = chunk_error(chunk)
            if error:
                log(f"ERROR: {error.message}")
                raise ToolFailed(f"docker build failed: {error.message}")
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    log(line.rstrip())
                if line.startswith("Step "):
                    progress(line.strip())
                built = _BUILT_ID.search(line)
                if built and image_id is None:
                    image_id = built.group(1)
            if chunk.get("status"):
                log(" ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k)))
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and aux.get("ID"):
                image_id = str(aux["ID"])
        if not image_id:
            raise ToolFailed("docker build ended without reporting an image id")
        return self.image_id(image_id) or image_id

    def image_id(self, ref: str) -> str | None:
        """The full id of a local image (by id, name:tag or digest), ``None`` if the engine lacks it."""
        import docker

        try:
            return str(self._call("inspect image", lambda: self._client.api.inspect_image(ref))["Id"])
        except docker.errors.ImageNotFound:
            return None

    def pull(self, ref: str, auth: Mapping[str, str] | None = None) -> str | None:
        """Pull ``ref`` (``repo@sha256:...`` or ``repo:tag``) from its registry; the pulled image's id, or
        ``None`` when the registry does not have it."""
        import docker

        try:
            self._call(
                "pull image", lambda: self._client.images.pull(ref, auth_config=dict(auth) if auth else None)
            )
        except (docker.errors.NotFound, docker.errors.APIError):
            return None
        return self.image_id(ref)

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of a local image; ``ToolFailed`` if the engine does not have it."""
        import docker

        try:
            info = self._call("inspect image", lambda: self._client.api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            raise ToolFailed(f"image {ref} is not in the local Docker engine") from None
        return dict((info.get("Config") or {}).get("Labels") or {})

    def tag(self, image: str, ref: str) -> None:
        """Give a local image one more ``repository:tag``."""
        repository, tag = split_image_ref(ref)
        self._call("tag", lambda: self._client.api.tag(image, repository, tag))

    def remove_image(self, ref: str, force: bool = False) -> None:
        """Remove a local image; an image already gone is not an error."""
        import docker

        try:
            self._call("remove image", lambda: self._client.api.remove_image(ref, force=force))
        except docker.errors.ImageNotFound:
            pass
