#!/usr/bin/env bash
# Build and run the Jenkins controller of custom_jenkins/ (README.md beside this file explains each step).
#
#   bash custom_jenkins/manage.sh build            docker build the image (needs Docker Hub, jenkins.io, GitHub)
#   bash custom_jenkins/manage.sh check            check the secrets directory and settings, start nothing
#   bash custom_jenkins/manage.sh up               start the controller (build first if the image is missing)
#   bash custom_jenkins/manage.sh down             stop and remove the container (jenkins_home is kept)
#   bash custom_jenkins/manage.sh status|logs      the container's state and health / follow its log
#
# Settings (environment): JENKINS_IMAGE (iris-jenkins:2.504.3), JENKINS_NAME (jenkins), JENKINS_PORT (8080),
# JENKINS_SECRETS (./secrets: one file per secret, mode 700 directory), GIT_REPO_URL (required for `up`),
# AWS_REGION (optional). Secrets are passed as files under /run/secrets, never with -e: builds inherit the
# controller's environment, so a secret there would be readable by every build.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${JENKINS_IMAGE:-iris-jenkins:2.504.3}
NAME=${JENKINS_NAME:-jenkins}
PORT=${JENKINS_PORT:-8080}
SECRETS=${JENKINS_SECRETS:-$PWD/secrets}
SOCKET=/var/run/docker.sock
REQUIRED_SECRETS=(JENKINS_ADMIN_ID JENKINS_ADMIN_PASSWORD REGISTRY_USERNAME REGISTRY_PASSWORD)
OPTIONAL_SECRETS=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)

say() { printf 'manage: %s\n' "$*"; }
die() { # message [exit code]
    printf 'manage: error: %s\n' "$1" >&2
    exit "${2:-1}"
}

check() {
    command -v docker >/dev/null || die "the docker CLI is missing" 3
    [[ -S $SOCKET ]] || die "no Docker engine socket at $SOCKET" 3
    [[ -n ${GIT_REPO_URL:-} ]] || die "set GIT_REPO_URL: the repository the job builds (branch main)" 2
    [[ -d $SECRETS ]] || die "no secrets directory $SECRETS (see custom_jenkins/README.md, or set JENKINS_SECRETS)" 2
    [[ $(stat -c %a "$SECRETS") == 700 ]] || die "$SECRETS must be mode 700 (chmod 700 $SECRETS)" 2
    local name missing=()
    for name in "${REQUIRED_SECRETS[@]}"; do
        [[ -s $SECRETS/$name ]] || missing+=("$name")
    done
    ((${#missing[@]} == 0)) || die "missing or empty secret file(s) in $SECRETS: ${missing[*]}" 2
    for name in "${OPTIONAL_SECRETS[@]}"; do
        [[ -s $SECRETS/$name ]] || say "note: no $SECRETS/$name: the credential 'aws' is empty (profile local only)"
    done
    say "settings and secrets are complete (values not shown)"
}

build() {
    say "building $IMAGE from $HERE"
    docker build -t "$IMAGE" "$HERE"
}

up() {
    check
    if docker container inspect "$NAME" >/dev/null 2>&1; then
        say "container $NAME exists already: bash custom_jenkins/manage.sh down first to replace it"
        return
    fi
    docker image inspect "$IMAGE" >/dev/null 2>&1 || build
    docker run -d --name "$NAME" --restart unless-stopped \
        -p "127.0.0.1:$PORT:8080" \
        -v jenkins_home:/var/jenkins_home \
        -v "$SOCKET:$SOCKET" \
        --group-add "$(stat -c %g "$SOCKET")" \
        -v "$SECRETS:/run/secrets:ro" \
        -e "GIT_REPO_URL=$GIT_REPO_URL" \
        ${AWS_REGION:+-e "AWS_REGION=$AWS_REGION"} \
        "$IMAGE" >/dev/null
    say "started $NAME on http://127.0.0.1:$PORT/ (Jenkins takes a minute or two; 'status' shows its health)"
}

down() {
    if docker container inspect "$NAME" >/dev/null 2>&1; then
        docker rm -f "$NAME" >/dev/null
        say "removed $NAME; the volume jenkins_home is kept"
    else
        say "no container $NAME"
    fi
}

status() {
    docker container inspect -f '{{.Name}}: {{.State.Status}}, health {{if .State.Health}}{{.State.Health.Status}}{{else}}n/a{{end}}' "$NAME" 2>/dev/null ||
        say "no container $NAME"
}

case ${1:-} in
build) build ;;
check) check ;;
up) up ;;
down) down ;;
status) status ;;
logs) docker logs -f "$NAME" ;;
*) die "usage: bash custom_jenkins/manage.sh build|check|up|down|status|logs" 2 ;;
esac
