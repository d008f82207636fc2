#!/usr/bin/env bash
# The local test bed: a Docker engine, a local base image and a plain image registry, all on this machine
# (no public image registry is reachable from the project's CI machines). The tests build their own fake
# Trivy vulnerability DB (tests/support/trivydb) and start their own registries on free ports.
#
#   bash scripts/testbed.sh install [--for tests]
#                                     apt-get install what is missing: what the pipeline needs (the engine,
#                                     the registry, debootstrap for the base image), and with --for tests
#                                     also what only the test suite runs (Chromium, Go, Groovy, Java, wrk)
#   bash scripts/testbed.sh up [--without-base-image]
#                                     start what is not running / build what is missing (idempotent)
#   bash scripts/testbed.sh base-image
#                                     make the local base image if it is missing (needs the engine up)
#   bash scripts/testbed.sh down      stop what `up` started (and nothing else)
#   bash scripts/testbed.sh status    show what answers
#   bash scripts/testbed.sh env       print the exports the pipeline needs on this test bed
#
# State (logs, pidfiles, registry storage) lives in .testbed/ at the repository root.
# Overrides: TESTBED_DIR, TESTBED_BASE_IMAGE, TESTBED_REGISTRY_ADDR, DOCKER_HOST (unix:// only).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${TESTBED_DIR:-$ROOT/.testbed}
BASE_IMAGE=${TESTBED_BASE_IMAGE:-local/python:3.11-bookworm}
REGISTRY_ADDR=${TESTBED_REGISTRY_ADDR:-127.0.0.1:5000}
DOCKER_SOCK=${DOCKER_HOST:-unix:///var/run/docker.sock}
# What `run-local.sh` needs to run the pipeline: the engine, a registry, and debootstrap for the base image.
APT_MAIN=(docker.io docker-registry debootstrap)
# What only the test suite runs: htpasswd (registry auth), Go and bbolt (the fake Trivy DB), Chromium
# (browser tests), wrk (the service benchmark's test), Groovy on Java 17 (the Jenkinsfile run as a script).
APT_TESTS=(apache2-utils golang-go golang-github-coreos-bbolt-dev chromium wrk groovy openjdk-17-jre-headless)
ENGINE_TIMEOUT_S=${TESTBED_ENGINE_TIMEOUT_S:-60}

STARTED=()

say() { printf 'testbed: %s\n' "$*"; }
die() {
    printf 'testbed: error: %s\n' "$*" >&2
    exit 1
}

# await_started NAME PIDFILE LOG TIMEOUT_S CHECK...: poll CHECK every 0.5 s until it succeeds. Stop with the
# log's tail when the process in PIDFILE (once written) has exited, or after TIMEOUT_S seconds.
await_started() {
    local name=$1 pidfile=$2 log=$3 timeout_s=$4 polls=0
    shift 4
    until "$@"; do
        if { [[ -s $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; } || ((polls >= timeout_s * 2)); then
            tail -n 20 "$log" >&2 || true
            die "$name did not answer within ${timeout_s}s; see $log"
        fi
        sleep 0.5
        polls=$((polls + 1))
    done
}

# --- install -----------------------------------------------------------------------------------

cmd_install() {
    local packages=("${APT_MAIN[@]}") missing=() pkg
    case ${1:-} in
    "") ;;
    --for)
        [[ ${2:-} == tests ]] || die "install --for takes 'tests', not '${2:-}'"
        packages+=("${APT_TESTS[@]}")
        ;;
    *) die "install takes no argument but '--for tests', not '$1'" ;;
    esac
    for pkg in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "all packages present: ${packages[*]}"
        return
    fi
    say "installing: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# --- engine ------------------------------------------------------------------------------------

engine_answers() { DOCKER_HOST=$DOCKER_SOCK docker info >/dev/null 2>&1; }

start_engine() {
    if engine_answers; then
        say "docker engine already answers at $DOCKER_SOCK"
        return
    fi
    [[ $DOCKER_SOCK == unix://* ]] || die "DOCKER_HOST=$DOCKER_SOCK does not answer and is not a local socket I can start"
    command -v dockerd >/dev/null || die "dockerd is missing: bash scripts/testbed.sh install"
    say "starting dockerd on $DOCKER_SOCK (log: $STATE/dockerd.log)"
    # setsid: the engine must outlive this script and not get the terminal's Ctrl-C.
    setsid dockerd --host "$DOCKER_SOCK" --pidfile "$STATE/dockerd.pid" >"$STATE/dockerd.log" 2>&1 </dev/null &
    # No liveness check by pidfile: dockerd writes it late, and a crashed one leaves a stale file.
    await_started dockerd "" "$STATE/dockerd.log" "$ENGINE_TIMEOUT_S" engine_answers
    STARTED+=("dockerd (pid $(cat "$STATE/dockerd.pid"))")
}

# --- base image --------------------------------------------------------------------------------

make_base_image() {
    if DOCKER_HOST=$DOCKER_SOCK docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "base image $BASE_IMAGE present"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is missing: bash scripts/testbed.sh install"
    local started
    ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/testbed-rootfs.XXXXXX")
    # The rootfs is ~300 MB of root-owned files: never leave it behind, whatever happens.
    trap remove_rootfs EXIT
    trap 'remove_rootfs; exit 130' INT TERM
    local rootfs=$ROOTFS
    started=$SECONDS
    say "debootstrapping bookworm into $rootfs (about a minute; log: $STATE/debootstrap.log)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" >"$STATE/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $STATE/debootstrap.log"
    # The registries are reached through a TLS proxy whose CA only the host's bundle carries.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | DOCKER_HOST=$DOCKER_SOCK docker import \
        -c 'CMD ["python3"]' -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    remove_rootfs
    trap - EXIT INT TERM
    STARTED+=("base image $BASE_IMAGE (made in $((SECONDS - started))s)")
}

# A failed debootstrap can leave /proc or /sys mounted inside the rootfs: unmount before removing.
remove_rootfs() {
    [[ -n ${ROOTFS:-} && -d $ROOTFS ]] || return 0
    local mnt
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v root="$ROOTFS/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$ROOTFS"
    ROOTFS=
}

# --- registry ----------------------------------------------------------------------------------

registry_answers() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

start_registry() {
    if registry_answers; then
        say "registry already answers at $REGISTRY_ADDR"
        return
    fi
    command -v docker-registry >/dev/null || die "docker-registry is missing: bash scripts/testbed.sh install"
    mkdir -p "$STATE/registry"
    cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    say "starting docker-registry on $REGISTRY_ADDR (log: $STATE/registry.log)"
    # The pid is written by the process that becomes the registry (exec), whatever setsid does.
    setsid bash -c 'echo $$ >"$1"; exec docker-registry serve "$2"' _ "$STATE/registry.pid" "$STATE/registry.yml" \
        >"$STATE/registry.log" 2>&1 </dev/null &
    local waited=0
    until [[ -s $STATE/registry.pid ]] || ((waited >= 10)); do
        sleep 0.2
        waited=$((waited + 1))
    done
    await_started "docker-registry at $REGISTRY_ADDR" "$STATE/registry.pid" "$STATE/registry.log" 15 registry_answers
    STARTED+=("registry at $REGISTRY_ADDR (pid $(cat "$STATE/registry.pid"))")
}

cmd_up() {
    local base_image=yes
    case ${1:-} in
    "") ;;
    --without-base-image) base_image=no ;;
    *) die "up takes no argument but '--without-base-image', not '$1'" ;;
    esac
    mkdir -p "$STATE"
    start_engine
    start_registry
    [[ $base_image == no ]] || make_base_image
    if ((${#STARTED[@]})); then
        say "started/made:"
        printf '  - %s\n' "${STARTED[@]}"
    else
        say "everything was already up"
    fi
    cat <<EOF
testbed: environment to use:
  export DOCKER_HOST=$DOCKER_SOCK
  python -m pipeline run --stage all --set image.base=$BASE_IMAGE --set registry.url=$REGISTRY_ADDR
  # stop what this started: bash scripts/testbed.sh down
EOF
}

# --- down / status -----------------------------------------------------------------------------

stop_pidfile() {
    local name=$1 pidfile=$2 pid waited=0
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null; do
            if ((waited >= 30)); then
                say "$name did not stop in 15s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.5
            waited=$((waited + 1))
        done
    fi
    rm -f "$pidfile"
}

cmd_down() {
    stop_pidfile docker-registry "$STATE/registry.pid"
    stop_pidfile dockerd "$STATE/dockerd.pid"
    say "down"
}

cmd_status() {
    local ok="answers" no="does not answer"
    say "docker engine ($DOCKER_SOCK): $(engine_answers && echo "$ok" || echo "$no")"
    if engine_answers; then
        say "base image $BASE_IMAGE: $(DOCKER_HOST=$DOCKER_SOCK docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 &&
            echo present || echo missing)"
    fi
    say "registry ($REGISTRY_ADDR): $(registry_answers && echo "$ok" || echo "$no")"
    local name
    for name in dockerd registry; do
        [[ -s $STATE/$name.pid ]] && kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null &&
            say "$name was started by this script (pid $(cat "$STATE/$name.pid"))"
    done
    return 0
}

# Shell exports for the pipeline on this test bed (used by scripts/run-local.sh): the engine socket,
# and the local base image when the default one (python:3.11-slim) cannot be had from Docker Hub.
cmd_env() {
    echo "export DOCKER_HOST=$DOCKER_SOCK"
    if ! DOCKER_HOST=$DOCKER_SOCK docker image inspect python:3.11-slim >/dev/null 2>&1; then
        echo "export PIPELINE_IMAGE__BASE=$BASE_IMAGE"
    fi
}

main() {
    case ${1:-} in
    env) cmd_env ;;
    install) cmd_install "${@:2}" ;;
    up) cmd_up "${@:2}" ;;
    base-image)
        mkdir -p "$STATE"
        engine_answers || die "the docker engine does not answer at $DOCKER_SOCK: bash scripts/testbed.sh up"
        make_base_image
        ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: bash scripts/testbed.sh install [--for tests]|up [--without-base-image]|base-image|down|status|env" >&2
        exit 2
        ;;
    esac
}

main "$@"
