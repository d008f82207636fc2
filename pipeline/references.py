"""The grammar of the names the configuration hands to Docker and ECS: image references, tags, containers.

Checked when the configuration is read (``config.loading._validate``: exit 2 before any stage), so that a
name Docker would refuse, or one that is not a name at all (``$(touch x);A``), never reaches a stage.

- Image references: distribution/reference, the grammar Docker itself parses references with (github.com/
  distribution/reference ``regexp.go`` and the grammar in ``reference.go``, at 0965666, 2026-04-18):
  ``[domain[:port]/]path[:tag][@digest]``, path components of lowercase letters and digits joined by one
  ``.``, one or two ``_`` or any number of ``-``, the path at most 255 characters (``WithName``,
  ``RepositoryNameTotalLengthMax``), a tag ``[\\w][\\w.-]{0,127}``. Go's ``\\w`` is ASCII, hence ``re.ASCII``.
- Local container names: the Docker engine's (moby ``daemon/names/names.go``, ``RestrictedNameChars``):
  ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``.
- ECS container names: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens"
  (AWS ECS API reference, ``ContainerDefinition.name``).
"""

from __future__ import annotations

import re

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[(?:[a-fA-F0-9:]+)\])"
DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

_NAME = re.compile(rf"(?:({DOMAIN})/)?({REMOTE_NAME})", re.ASCII)
_REFERENCE = re.compile(rf"((?:{DOMAIN}/)?{REMOTE_NAME})(?::({TAG}))?(?:@({DIGEST}))?", re.ASCII)
_TAG = re.compile(TAG, re.ASCII)
# registry.url: a registry host, optionally with a namespace the repository goes under.
_REGISTRY = re.compile(rf"{DOMAIN}(?:/{REMOTE_NAME})?", re.ASCII)
_SHA256_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_ECS_CONTAINER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
PATH_MAX = 255

NAME_RULE = (
    "a repository name as Docker reads it: [HOST[:PORT]/]PATH, PATH of '/'-separated parts of lowercase "
    "letters and digits joined by '.', '_', '__' or '-', at most 255 characters"
)
REFERENCE_RULE = "an image reference NAME[:TAG][@DIGEST] (NAME " + NAME_RULE.split(": ", 1)[1] + ")"
TAG_RULE = "a tag of letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 characters"
CONTAINER_RULE = "a container name: a letter or digit, then at least one of letters, digits, '_', '.', '-'"
ECS_CONTAINER_RULE = "an ECS container name: 1 to 255 letters, digits, '_' and '-'"


def is_name(text: str) -> bool:
    """An image repository name, without tag or digest (``localhost:5000/team/iris``)."""
    match = _NAME.fullmatch(text)
    return match is not None and len(match.group(2)) <= PATH_MAX


def is_reference(text: str) -> bool:
    """A full image reference: name, optional tag, optional digest."""
    match = _REFERENCE.fullmatch(text)
    return match is not None and is_name(match.group(1))


def reference_digest(text: str) -> str | None:
    """The digest of a valid reference (None when it has none or is not a reference)."""
    match = _REFERENCE.fullmatch(text)
    return match.group(3) if match and is_name(match.group(1)) else None


def is_sha256_digest(digest: str) -> bool:
    return _SHA256_DIGEST.fullmatch(digest) is not None


def is_tag(text: str) -> bool:
    return _TAG.fullmatch(text) is not None


def is_registry(text: str) -> bool:
    """``registry.url``: ``HOST[:PORT]``, optionally ``/NAMESPACE``."""
    return _REGISTRY.fullmatch(text) is not None


def is_container_name(text: str) -> bool:
    return _CONTAINER_NAME.fullmatch(text) is not None


def is_ecs_container_name(text: str) -> bool:
    return _ECS_CONTAINER_NAME.fullmatch(text) is not None
