"""What the service that ``scripts/run-local.sh`` deployed looks like from outside, as one JSON line.

``.ci/run`` prints this after the README's first command and again after the test suite, and fails when
the two differ: the suite must never replace, restart or retag the user's service, nor even send it a
request (the service's own request counters, from ``/metrics``, except ``/health``, which the image's
HEALTHCHECK calls, and ``/metrics`` itself, the one this script calls; the model's version is read there too).

It also lists the image's tags in the test bed's registry with the digest each points to: the suite must
leave the user's repository there as it found it.

Usage: python .ci/user_service.py [CONTAINER] [URL] [REGISTRY/REPOSITORY]
(defaults: iris-classifier, http://127.0.0.1:8000, 127.0.0.1:5000/iris-classifier)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

_COUNT = re.compile(r"^http_request_duration_seconds_count\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_INSPECT_FORMAT = "{{.Id}} {{.Image}} {{.State.StartedAt}} {{.RestartCount}}"
_MODEL = re.compile(r'^iris_model_info\{model_version="(?P<version>[^"]*)"\} 1\.0$', re.M)
_NOT_COUNTED = ('endpoint="/health"', 'endpoint="/metrics"')


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only
        return answer.read().decode("utf-8")


def registry_tags(repository: str) -> dict[str, str]:
    """Each tag of REGISTRY/NAME and the manifest digest it points to."""
    registry, name = repository.split("/", 1)
    tags = json.loads(_get(f"http://{registry}/v2/{name}/tags/list")).get("tags") or []
    digests = {}
    for tag in sorted(tags):
        request = urllib.request.Request(
            f"http://{registry}/v2/{name}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # loopback only
            digests[tag] = answer.headers["Docker-Content-Digest"]
    return digests


def identity(container: str, url: str, repository: str) -> dict[str, object]:
    inspect = subprocess.run(
        ["docker", "inspect", "--format", _INSPECT_FORMAT, container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    metrics = _get(url + "/metrics")
    model = _MODEL.search(metrics)
    requests_seen = {
        match["labels"]: float(match["value"])
        for line in metrics.splitlines()
        if (match := _COUNT.match(line)) and not any(label in match["labels"] for label in _NOT_COUNTED)
    }
    return {
        "container_id": inspect[0],
        "image": inspect[1],
        "started_at": inspect[2],
        "restarts": inspect[3],
        "model_version": model["version"] if model else None,
        "requests": requests_seen,
        "registry_tags": registry_tags(repository),
    }


def main(argv: list[str]) -> int:
    container = argv[1] if len(argv) > 1 else "iris-classifier"
    url = argv[2] if len(argv) > 2 else "http://127.0.0.1:8000"
    repository = argv[3] if len(argv) > 3 else "127.0.0.1:5000/iris-classifier"
    print(json.dumps(identity(container, url, repository), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
