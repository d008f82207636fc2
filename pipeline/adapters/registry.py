"""The image registry's HTTP API (distribution v2), for what the Docker engine does not tell us.

The engine reports a digest after a push; ``push`` asks the registry itself which digest a tag
points at, so a push that "succeeded" but left nothing behind is caught. Auth follows the
registry's ``WWW-Authenticate`` challenge: Basic (a plain ``docker-registry`` with htpasswd) or a
Bearer token fetched from the realm with the basic credentials (Docker Hub, ECR, GHCR).
Messages name the registry and the repository, never the password.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from pipeline.errors import ToolFailed

MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_CREDENTIALS_HINT = "check REGISTRY_USERNAME/REGISTRY_PASSWORD or DOCKERHUB_USERNAME/DOCKERHUB_TOKEN"
_DOCKER_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: the scheme and its parameters (realm, service, scope)."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, _, rest = header.strip().partition(" ")
        return cls(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


def registry_base_url(url: str) -> str:
    """The API root for a registry given as ``host[:port]`` or a URL.

    The engine talks plain HTTP to loopback registries and HTTPS to every other one, so do the same
    when no scheme is given; Docker Hub's API lives on ``registry-1.docker.io``.
    """
    if "://" not in url:
        host = url.split("/", 1)[0]
        scheme = "http" if is_loopback(host) else "https"
        url = f"{scheme}://{host}"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in _DOCKER_HUB_NAMES:
        return "https://registry-1.docker.io"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    return f"{parts.scheme}://{netloc}"


def is_loopback(host_port: str) -> bool:
    """Whether ``host[:port]`` names this machine (``localhost``, 127.0.0.0/8 or ``::1``)."""
    host = host_port
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hub_repository(base_url: str, repository: str) -> str:
    """Docker Hub keeps official images under ``library/``; other registries take the name as is."""
    if base_url == "https://registry-1.docker.io" and "/" not in repository:
        return f"library/{repository}"
    return repository


class RegistryClient:
    """A small client for a v2 registry: ping and manifest digests, with Basic or Bearer auth."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        self.base_url = registry_base_url(url)
        self._username = username
        self._password = password
        self._timeout = timeout
        self._verify = verify
        self._session = requests.Session()
        self._tokens: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r}, username={self._username!r})"

    def ping(self) -> None:
        """Check the registry answers the v2 API and accepts our credentials (if it asks for any)."""
        response = self._request("GET", "/v2/", scope=None)
        if response.status_code != 200:
            raise ToolFailed(f"registry at {self.base_url} answered /v2/ with HTTP {response.status_code}")

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest the registry holds for ``repository:reference`` (``None`` if it has no such tag).

        A HEAD with every manifest media type accepted: otherwise the registry may convert an OCI or
        multi-arch manifest to schema 1 and answer with a digest that matches nothing pushed.
        """
        repository = hub_repository(self.base_url, repository)
        response = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ToolFailed(
                f"registry at {self.base_url} answered HTTP {response.status_code} "
                f"for the manifest of {repository}:{reference}"
            )
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise ToolFailed(
                f"registry at {self.base_url} sent no Docker-Content-Digest for {repository}:{reference}"
            )
        return digest

    def _request(
        self, method: str, path: str, *, scope: str | None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """Send a request, answering one auth challenge if the registry sends one."""
        headers = dict(headers or {})
        token = self._tokens.get(scope or "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self._send(method, path, headers)
        if response.status_code != 401:
            return response
        challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
        if challenge.scheme == "bearer":
            headers["Authorization"] = f"Bearer {self._fetch_token(challenge, scope)}"
            response = self._send(method, path, headers)
        elif challenge.scheme == "basic":
            self._require_credentials()
            response = self._send(method, path, headers, auth=(self._username or "", self._password or ""))
        if response.status_code == 401:
            raise self._refused()
        return response

    def _send(
        self, method: str, path: str, headers: dict[str, str], auth: tuple[str, str] | None = None
    ) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            return self._session.request(
                method, url, headers=headers, auth=auth, timeout=self._timeout, verify=self._verify
            )
        except requests.exceptions.SSLError as exc:
            raise ToolFailed(
                f"TLS with the registry at {self.base_url} failed: {type(exc).__name__}",
                hint="is registry.url right? a plain-HTTP registry must be on 127.0.0.1 or localhost",
            ) from None
        except requests.exceptions.ConnectionError:
            raise ToolFailed(
                f"registry at {self.base_url} does not answer (connection failed)",
                hint="is registry.url right and the registry running? locally: bash scripts/testbed.sh up",
            ) from None
        except requests.exceptions.Timeout:
            raise ToolFailed(
                f"registry at {self.base_url} did not answer within {self._timeout:g} s"
            ) from None

    def _fetch_token(self, challenge: Challenge, scope: str | None) -> str:
        """Trade the basic credentials (or none: anonymous pull) for a token, as ``docker login`` does."""
        realm = challenge.params.get("realm")
        if not realm:
            raise ToolFailed(f"registry at {self.base_url} asked for a token but named no realm")
        params = {"service": challenge.params.get("service", "")}
        wanted_scope = challenge.params.get("scope") or scope
        if wanted_scope:
            params["scope"] = wanted_scope
        auth = (self._username, self._password) if self._username and self._password else None
        try:
            response = self._session.get(
                realm, params=params, auth=auth, timeout=self._timeout, verify=self._verify
            )
        except requests.exceptions.RequestException:
            raise ToolFailed(
                f"token service {realm} of the registry at {self.base_url} does not answer"
            ) from None
        if response.status_code in (401, 403):
            raise self._refused()
        if response.status_code != 200:
            raise ToolFailed(f"token service {realm} answered HTTP {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ToolFailed(f"token service {realm} answered without a token")
        self._tokens[scope or ""] = token
        return str(token)

    def _require_credentials(self) -> None:
        if not (self._username and self._password):
            raise ToolFailed(
                f"registry at {self.base_url} needs credentials and none were given", hint=_CREDENTIALS_HINT
            )

    def _refused(self) -> ToolFailed:
        if not (self._username and self._password):
            return ToolFailed(
                f"registry at {self.base_url} needs credentials and none were given", hint=_CREDENTIALS_HINT
            )
        return ToolFailed(
            f"registry at {self.base_url} refused the credentials of user '{self._username}'",
            hint=_CREDENTIALS_HINT,
        )
