"""What the tools the pipeline runs may see of its environment, and which values the scrubber hides.

Beside :mod:`pipeline.scrub` and :mod:`pipeline.secret_env`: the three together are the pipeline's policy on
credentials in processes and text.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.secret_env import CREDENTIAL_NAME, CREDENTIAL_VARIABLES, is_secret_name

# What the tools the pipeline runs (linters, pytest, Trivy, hadolint) get of this process's environment: an
# allowlist, so a credential under a name nobody thought of (a Jenkins binding, a cloud SDK's token) never
# reaches the code under test. A name that looks like a credential (...PASSWORD, ...TOKEN, ...SECRET, ..._KEY)
# is left out even under an allowed prefix, such as TRIVY_PASSWORD.
TOOL_ENV_NAMES = frozenset(
    """PATH HOME USER LOGNAME SHELL LANG LANGUAGE TZ TMPDIR TEMP TMP TERM COLUMNS LINES NO_COLOR FORCE_COLOR
    CI VIRTUAL_ENV SOURCE_DATE_EPOCH DOCKER_HOST DOCKER_CERT_PATH DOCKER_TLS_VERIFY DOCKER_CONFIG
    SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY
    http_proxy https_proxy no_proxy all_proxy PYTHONPATH PYTHONHASHSEED PYTHONDONTWRITEBYTECODE PYTHONUTF8
    PYTHONIOENCODING PYTEST_ADDOPTS""".split()
)
TOOL_ENV_PREFIXES = ("LC_", "XDG_", "TRIVY_", "PIP_", "COVERAGE_", "HYPOTHESIS_", "MYPY_", "RUFF_", "BLACK_")


def tool_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` that tools the pipeline runs may see (see ``TOOL_ENV_NAMES``)."""
    return {
        name: value
        for name, value in environ.items()
        if (name in TOOL_ENV_NAMES or name.startswith(TOOL_ENV_PREFIXES))
        and name not in CREDENTIAL_VARIABLES
        and not CREDENTIAL_NAME.search(name)
    }


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values the scrubber takes out of logs and reports: those of every credential variable
    (``secret_env.is_secret_name``), from 4 characters (shorter would scrub common words), and from 8 for
    a name that only looks like a credential (``TOKENIZERS_PARALLELISM=false`` is not one)."""
    return tuple(
        value
        for name, value in environ.items()
        if is_secret_name(name) and len(value) >= (4 if name in CREDENTIAL_VARIABLES else 8)
    )
