"""What the container stages share: the engine connection, image names and tags, registry access.

Kept apart from the stages so build, smoke, push and deploy name images and reach the engine and
the registry the same way. docker-py and requests are imported only when a stage runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.adapters import ecr, reach
from pipeline.adapters.git import GitInfo
from pipeline.config import Config
from pipeline.errors import EngineUnavailable, EnvironmentProblem, StageFailed
from pipeline.stages.base import CheckResult

if TYPE_CHECKING:
    from pipeline.adapters.docker_engine import DockerEngine
    from pipeline.adapters.registry import RegistryClient

SERVICE_PORT = 5000  # what the server listens on inside the service image (PORT in the Dockerfile)

INPUTS_LABEL = "io.mlops.inputs-hash"
MODEL_LABEL = "io.mlops.model.version"
LOCAL_BASE_HINT = (
    "on a machine without Docker Hub: bash scripts/testbed.sh up, "
    "then --set image.base=local/python:3.11-bookworm"
)


def connect(config: Config) -> DockerEngine:
    from pipeline.adapters.docker_engine import DockerEngine

    return DockerEngine.connect(config.docker_host or None)


def engine_check(config: Config) -> CheckResult:
    """``doctor`` and preflight: does the Docker engine answer?"""
    try:
        engine = connect(config)
        version = engine.version()
    except EngineUnavailable as exc:
        return CheckResult("docker engine", False, exc.message, exc.hint or "")
    return CheckResult(
        "docker engine", True, f"Docker {version.get('Version')} (API {version.get('ApiVersion')})"
    )


def container_reach(config: Config, engine: DockerEngine) -> reach.Reach:
    """How this run reaches the containers it starts: published on 127.0.0.1, or on a shared network."""
    return reach.detect(engine, config.docker.reach, config.docker.network)


def reach_check(config: Config) -> CheckResult:
    """``doctor`` and preflight of the stages that probe a container: how will they reach it?"""
    try:
        found = container_reach(config, connect(config))
    except (EngineUnavailable, EnvironmentProblem) as exc:
        return CheckResult("containers reached", False, exc.message, exc.hint or "")
    return CheckResult("containers reached", True, found.describe())


def publish(host_port: int | None) -> dict[int, tuple[str, int]]:
    """The port bindings of a service container: ``host_port`` on the engine host's 127.0.0.1, if any."""
    return {SERVICE_PORT: ("127.0.0.1", host_port)} if host_port else {}


def service_url(engine: DockerEngine, found: reach.Reach, container: str, host_port: int | None) -> str:
    """Where this process reaches the service in ``container``: its published port on 127.0.0.1, or
    its own port at its address on the shared network."""
    if found.mode == reach.HOST:
        if not host_port:
            raise ValueError("reach mode host needs a published port")
        return f"http://127.0.0.1:{host_port}"
    address = engine.container_address(container, found.network or "")
    if not address:
        died = engine.container_state(container).failure()
        raise StageFailed(
            f"container {container[:12]} has no address on network '{found.network}'"
            + (f": {died}" if died else ""),
            hint="is docker.network a network the engine can attach containers to?",
        )
    return f"http://{address}:{SERVICE_PORT}"


def repository(config: Config) -> str:
    """The full repository name, ``registry/name``, unless ``image.repository`` already names a host."""
    repo = config.image.repository
    first = repo.split("/", 1)[0]
    has_host = "/" in repo and ("." in first or ":" in first or first == "localhost")
    if has_host or not config.registry.url:
        return repo
    return f"{config.registry.url.rstrip('/')}/{repo}"


# ``{git_sha}`` where git cannot tell the commit (a source tarball): the first digits of the hash of the build
# context, as many as a short sha has, so the same files get the same tag; the dry run, before the context
# is final (train may run first), shows the placeholder.
NO_COMMIT_DIGITS = 12
NO_COMMIT_PLACEHOLDER = "<context-hash>"


def no_commit_sha(context_hash: str) -> str:
    """What ``{git_sha}`` is outside a git checkout, for a build context of hash ``context_hash``."""
    return context_hash[:NO_COMMIT_DIGITS]


def resolve_tags(config: Config, git: GitInfo, fallback: str) -> list[str]:
    """Tags from ``image.tags`` templates: ``{git_sha}`` (``-dirty`` when the tree is; ``fallback`` outside a
    git checkout, :func:`no_commit_sha`), ``{branch}``, and ``NAME@default-branch`` for a tag given only on
    the default branch, from a clean tree (a ``latest`` built from uncommitted files would be a release
    nobody can rebuild)."""
    sha = (git.sha or fallback) + ("-dirty" if git.dirty else "")
    tags: list[str] = []
    for template in config.image.tags:
        name, _, condition = template.partition("@")
        if condition == "default-branch" and (git.branch != config.image.default_branch or git.dirty):
            continue
        tag = name.format(git_sha=sha, branch=(git.branch or "detached").replace("/", "-"))
        if tag not in tags:
            tags.append(tag)
    return tags or [sha]


def retarget(ref: str, repository_now: str) -> str:
    """``ref`` (``repo:tag``) with the repository the configuration names now, the tag kept."""
    from pipeline.adapters.docker_images import split_image_ref

    return f"{repository_now}:{split_image_ref(ref)[1]}"


def is_ecr(config: Config) -> bool:
    """Is ``registry.url`` an Amazon ECR registry (credentials from boto3 instead of REGISTRY_*)?"""
    return ecr.parse_host(config.registry.url) is not None


def credentials(config: Config) -> tuple[str, str] | None:
    """``(username, password)`` for the registry: REGISTRY_* (or DOCKERHUB_*) when set, else an ECR token
    from boto3 for an ECR registry, else None (anonymous)."""
    if config.secrets.registry_username:
        return config.secrets.registry_username, config.secrets.registry_password
    if is_ecr(config):
        return ecr.login(config.registry.url, tuple(config.secrets.boto3_credentials().items()))
    return None


def registry_client(config: Config) -> RegistryClient:
    from pipeline.adapters.registry import RegistryClient

    username, password = credentials(config) or (None, None)
    return RegistryClient(
        config.registry.url, username=username, password=password, timeout=config.registry.timeout_s
    )


def auth_config(config: Config) -> dict[str, str] | None:
    """Per-call credentials for docker-py (``X-Registry-Auth``); never written to a config file."""
    found = credentials(config)
    if found is None:
        return None
    return {"username": found[0], "password": found[1], "serveraddress": config.registry.url}


class RegistryThroughEngine:
    """The registry as the engine sees it, for a registry on the engine host's loopback that this
    process (in a container beside the engine) cannot reach itself. Same questions as RegistryClient."""

    def __init__(self, config: Config, engine: DockerEngine) -> None:
        self._config = config
        self._engine = engine
        self.base_url = config.registry.url

    def ping(self) -> None:
        """The engine reaches the registry when it can ask it about a tag (a missing tag is an answer)."""
        self.manifest_digest(path_in_registry(self._config, repository(self._config)), "latest")

    def manifest_digest(self, path: str, tag: str) -> str | None:
        ref = f"{self._config.registry.url.rstrip('/')}/{path}:{tag}"
        return self._engine.distribution_digest(ref, auth_config(self._config))


def registry_view(config: Config, engine: DockerEngine) -> tuple[RegistryClient | RegistryThroughEngine, str]:
    """Who asks the registry which digest a tag holds, and how that is said in ``doctor`` and the log.

    This process asks it over HTTP, unless the registry is on the engine host's loopback and this
    process does not share that loopback: then the engine asks it, from where it pushed.
    """
    if is_local_registry(config) and not container_reach(config, engine).loopback_is_hosts():
        return RegistryThroughEngine(config, engine), (
            f"{config.registry.url} is on the engine host's loopback: asked through the engine"
        )
    return registry_client(config), f"{config.registry.url} asked over its HTTP API"


def is_local_registry(config: Config) -> bool:
    """A registry on this machine (the test bed's), which needs no credentials."""
    from pipeline.adapters.registry import is_loopback

    return is_loopback(config.registry.url.split("/", 1)[0])


def path_in_registry(config: Config, repo: str) -> str:
    """``localhost:5000/iris`` -> ``iris``: the name the registry API knows."""
    prefix = config.registry.url.rstrip("/") + "/"
    return repo[len(prefix) :] if repo.startswith(prefix) else repo
