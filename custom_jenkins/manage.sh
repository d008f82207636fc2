#!/usr/bin/env bash
# Build and run the Jenkins controller of custom_jenkins/ (README.md beside this file explains each step).
#
#   bash custom_jenkins/manage.sh build            docker build the image (needs Docker Hub, jenkins.io, PyPI)
#   bash custom_jenkins/manage.sh check            check the settings and the secrets (also inside the image, as
#                                                  uid 1000, when it exists), start nothing
#   bash custom_jenkins/manage.sh up               start the controller (build first if the image is missing)
#   bash custom_jenkins/manage.sh down             stop and remove the container (jenkins_home is kept)
#   bash custom_jenkins/manage.sh status|logs      the container's state and health / follow its log
#
# Settings (environment): JENKINS_IMAGE (iris-jenkins:2.504.3), JENKINS_NAME (jenkins), JENKINS_PORT (8080,
# Jenkins' UI on 127.0.0.1), JENKINS_SECRETS (./secrets: one file per secret, directory mode 700, all owned by
# uid 1000, the container's user), GIT_REPO_URL (required for `up`), AWS_REGION (optional). Secrets are passed
# as files under /run/secrets, never with -e: builds inherit the controller's environment. (Files do not hide
# them from builds either: builds on the controller run as uid 1000 too; see README.md.)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${JENKINS_IMAGE:-iris-jenkins:2.504.3}
NAME=${JENKINS_NAME:-jenkins}
PORT=${JENKINS_PORT:-8080}
# Absolute: `docker run -v NAME:...` with a relative NAME would mount a named volume, not the directory.
SECRETS=$(realpath -m -- "${JENKINS_SECRETS:-$PWD/secrets}")
SOCKET=/var/run/docker.sock
# Jenkins' uid in the image (jenkins/jenkins's user `jenkins`, the Dockerfile's USER): JCasC reads the secrets as it.
JENKINS_UID=1000
REQUIRED_SECRETS=(JENKINS_ADMIN_ID JENKINS_ADMIN_PASSWORD REGISTRY_USERNAME REGISTRY_PASSWORD)
OPTIONAL_SECRETS=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)

say() { printf 'manage: %s\n' "$*"; }
die() { # message [exit code]
    printf 'manage: error: %s\n' "$1" >&2
    exit "${2:-1}"
}

# The host's view: settings, the socket, the directory's mode and, when this user can look inside, the files.
check_host() {
    command -v docker >/dev/null || die "the docker CLI is missing" 3
    [[ -S $SOCKET ]] || die "no Docker engine socket at $SOCKET" 3
    [[ -n ${GIT_REPO_URL:-} ]] || die "set GIT_REPO_URL: the repository the job builds (branch main)" 2
    [[ -d $SECRETS ]] || die "no secrets directory $SECRETS (see custom_jenkins/README.md, or set JENKINS_SECRETS)" 2
    [[ $(stat -c %a "$SECRETS") == 700 ]] || die "$SECRETS must be mode 700 (chmod 700 $SECRETS)" 2
    # Owned by uid 1000 (as it should be), the directory is closed to an operator who is neither root nor
    # uid 1000: the files are then checked only inside the image, as uid 1000, which is what matters.
    if ! [[ -r $SECRETS && -x $SECRETS ]]; then
        say "note: $SECRETS belongs to uid $(stat -c %u "$SECRETS") and uid $(id -u) cannot look inside: its files are checked inside the image only"
        return
    fi
    local name missing=()
    for name in "${REQUIRED_SECRETS[@]}"; do
        [[ -s $SECRETS/$name ]] || missing+=("$name")
    done
    ((${#missing[@]} == 0)) || die "missing or empty secret file(s) in $SECRETS: ${missing[*]}" 2
    for name in "${OPTIONAL_SECRETS[@]}"; do
        [[ -s $SECRETS/$name ]] || say "note: no $SECRETS/$name: the credential 'aws' is empty (profile local only)"
    done
}

# Jenkins' view: the image's own check-secrets (its entrypoint), run as uid 1000 on the same mount as `up`.
# Root on the host reads anything, so only this shows that Jenkins can read the files: a secret it cannot
# read would become an empty credential (JCasC only warns). No network, nothing kept; it prints names only.
check_in_image() {
    local verdict
    if ! verdict=$(docker run --rm --network none --user "$JENKINS_UID:$JENKINS_UID" \
        -v "$SECRETS:/run/secrets:ro" --entrypoint /usr/local/bin/check-secrets "$IMAGE" 2>&1); then
        printf '%s\n' "$verdict" >&2
        die "Jenkins (uid $JENKINS_UID) cannot use the secrets in $SECRETS inside $IMAGE (see above); as root: chown -R $JENKINS_UID:$JENKINS_UID $SECRETS; chmod 700 $SECRETS; chmod 600 $SECRETS/*" 2
    fi
    say "uid $JENKINS_UID reads every required secret inside $IMAGE"
}

check() {
    check_host
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        check_in_image
    else
        say "note: no image $IMAGE yet: the check inside it, as uid $JENKINS_UID, runs at 'up' after the build"
        [[ $(stat -c %u "$SECRETS") == "$JENKINS_UID" ]] ||
            say "note: $SECRETS belongs to uid $(stat -c %u "$SECRETS"), not $JENKINS_UID: Jenkins will not be able to read it"
    fi
    say "settings and secrets are complete (values not shown)"
}

build() {
    say "building $IMAGE from $HERE"
    docker build -t "$IMAGE" "$HERE"
}

up() {
    check_host
    if docker container inspect "$NAME" >/dev/null 2>&1; then
        say "container $NAME exists already: bash custom_jenkins/manage.sh down first to replace it"
        return
    fi
    docker image inspect "$IMAGE" >/dev/null 2>&1 || build
    # Before `docker run -d`: a refused start there would only show as a restarting container.
    check_in_image
    # Jenkins' UI on 8080 (JENKINS_PORT), on the host's loopback only. The test bed's registry uses 5000 and
    # the service that the pipeline deploys (target local) 8000, so the three never collide.
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
