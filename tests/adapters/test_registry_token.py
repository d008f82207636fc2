"""RegistryClient's Bearer flow (Docker Hub, ECR, GHCR style) against a real docker-registry with token auth.

The registry is the real one; the token service beside it is this file's: a few lines that check the
basic credentials and sign a JWT with a throwaway key, as auth.docker.io does for Docker Hub.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pipeline.adapters.docker_engine import DockerEngine
from pipeline.adapters.registry import RegistryClient
from pipeline.errors import ToolFailed

pytestmark = pytest.mark.integration

USER = "token-bot"
PASSWORD = "t0ken-Pa55-for-tests"
SERVICE = "testbed-registry"
ISSUER = "testbed-token-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    """A throwaway RSA key and its self-signed certificate (the registry's ``rootcertbundle``)."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def token(self, subject: str, scopes: list[str]) -> str:
        """A JWT the registry accepts: signed RS256, certificate chain in ``x5c``, access per scope."""
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "access": [_access(scope) for scope in scopes],
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def _access(scope: str) -> dict[str, Any]:
    kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (scope, "", "")
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def _token_handler(signing: SigningKey, requests_seen: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class TokenHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
            query = parse_qs(urlsplit(self.path).query)
            authorization = self.headers.get("Authorization")
            requests_seen.append({"query": query, "authorized": authorization == expected})
            if authorization != expected:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"token": signing.token(USER, query.get("scope", []))}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # pylint: disable=arguments-differ
            """Quiet: the test asserts on ``requests_seen`` instead."""

    return TokenHandler


@dataclass
class TokenRegistry:
    address: str
    token_requests: list[dict[str, Any]]


@pytest.fixture
def token_registry(tmp_path: Path, start_registry: Callable[..., Any]) -> Iterator[TokenRegistry]:
    """A real docker-registry with ``auth.token`` pointing at a token service started here."""
    signing = SigningKey.make()
    bundle = tmp_path / "token-ca.pem"
    bundle.write_bytes(signing.cert.public_bytes(serialization.Encoding.PEM))
    seen: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _token_handler(signing, seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    auth = {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}}
    try:
        yield TokenRegistry(start_registry(auth=auth).address, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_bearer_flow_reads_the_pushed_digest(
    engine: DockerEngine,
    token_registry: TokenRegistry,
    tiny_context: Path,
    log: Any,
    unique: str,
    image_cleanup: list[str],
) -> None:
    repository = f"{token_registry.address}/testbed/tiny"
    image_cleanup.append(f"{repository}:{unique}")
    engine.build(tiny_context, "Dockerfile", [f"{repository}:{unique}"], log=log)
    digest = engine.push(repository, unique, {"username": USER, "password": PASSWORD}, log=log)

    client = RegistryClient(token_registry.address, USER, PASSWORD)
    client.ping()
    assert client.manifest_digest("testbed/tiny", unique) == digest
    scopes = [seen["query"].get("scope") for seen in token_registry.token_requests if seen["authorized"]]
    assert ["repository:testbed/tiny:pull"] in scopes


def test_bearer_flow_with_wrong_password_is_refused(token_registry: TokenRegistry) -> None:
    with pytest.raises(ToolFailed) as caught:
        RegistryClient(token_registry.address, USER, "wrong-t0ken").manifest_digest("testbed/tiny", "latest")
    assert "refused the credentials of user 'token-bot'" in str(caught.value)
    assert "wrong-t0ken" not in str(caught.value)
