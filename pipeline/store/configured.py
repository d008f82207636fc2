"""The store ``[store]`` names, opened with the settings and credentials of the rest of the config."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.store import S3Settings, Store, open_store
from pipeline.store.location import LocalLocation, parse


def shared_store(config: Config) -> Store | None:
    """The store ``store.url`` names, or ``None`` when it is the checkout's own ``pipeline.state_dir`` (the
    default, ``.pipeline``): then nothing is shared, and the pipeline remembers in that folder as it always
    did. Raises ``ConfigError`` (exit 2) for a URL it cannot read."""
    location = parse(config.store.url, base_dir=config.root)
    own = config.path(config.pipeline.state_dir).resolve()
    if isinstance(location, LocalLocation) and location.root == own:
        return None
    settings = S3Settings(
        region=config.store.region or config.deploy.ecs.region,
        endpoint_url=config.store.endpoint_url,
        credentials=config.secrets.boto3_credentials(),
    )
    return open_store(config.store.url, base_dir=config.root, s3=settings)


def check_url(config: Config) -> None:
    """``store.url`` can be read (``ConfigError``, exit 2, when not): checked when the config is loaded."""
    parse(config.store.url, base_dir=config.root)


def probe(config: Config) -> tuple[bool, str]:
    """``doctor``'s check: ``(ok, what was found)`` after writing, reading back and deleting one object."""
    import os
    import socket

    from pipeline.errors import StoreUnavailable

    try:
        store = shared_store(config)
        if store is None:
            return True, f"{config.store.url}: the checkout's own state folder (nothing shared)"
        key = f"doctor/{socket.gethostname()}-{os.getpid()}"
        store.put(key, b"doctor")
        read = store.get(key)
        store.delete(key)
    except StoreUnavailable as exc:
        return False, exc.message
    if read != b"doctor":
        return False, f"{store.url}: an object written could not be read back"
    write = (
        "written and read" if config.store.write else "written and read (store.write = false: runs only read)"
    )
    return True, f"{store.url}: {write}"
