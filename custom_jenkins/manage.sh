#!/usr/bin/env bash
# Build and run Jenkins for this project: the controller and its one agent (README.md beside this file explains
# each step).
#
#   bash custom_jenkins/manage.sh build            docker build both images (needs Docker Hub, jenkins.io, PyPI)
#   bash custom_jenkins/manage.sh check            check the settings and the secrets (also inside the image, as
#                                                  uid 1000, when it exists), start nothing
#   bash custom_jenkins/manage.sh up               start the controller, wait until it answers, read the agent's
#                                                  secret from it, start the agent (build first if missing)
#   bash custom_jenkins/manage.sh down             stop and remove both containers (their volumes are kept)
#   bash custom_jenkins/manage.sh status|logs      the containers' state and health / follow the controller's log
#
# Settings (environment): JENKINS_IMAGE (iris-jenkins:2.568.2), JENKINS_AGENT_IMAGE (iris-jenkins-agent:2.568.2),
# JENKINS_NAME (jenkins; the agent is NAME-agent), JENKINS_PORT (8080, Jenkins' UI on 127.0.0.1), JENKINS_URL
# (http://127.0.0.1:PORT/, the address people and webhooks use: BUILD_URL is made from it), JENKINS_SECRETS
# (./secrets: one file per secret, directory mode 700, all owned by uid 1000, the container's user),
# GIT_REPO_URL (required for `up`), GIT_USERNAME/GIT_PASSWORD as secret files (optional, a private repository),
# AWS_REGION (optional). Secrets are passed as files under /run/secrets, never with -e. The controller gets them
# all and runs no build; the agent gets only its own connection secret, and the builds on it get the registry
# and AWS credentials through withCredentials (the Jenkinsfile), for their duration only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${JENKINS_IMAGE:-iris-jenkins:2.568.2}
AGENT_IMAGE=${JENKINS_AGENT_IMAGE:-iris-jenkins-agent:2.568.2}
NAME=${JENKINS_NAME:-jenkins}
AGENT=$NAME-agent
# The node's name in casc.yaml (jenkins.nodes[].permanent.name).
AGENT_NODE=agent
NETWORK=$NAME
# Volumes named after the controller, so that a second Jenkins (another JENKINS_NAME) never shares them.
HOME_VOLUME=${NAME}_home
AGENT_VOLUME=${NAME}_agent
AGENT_SECRET_VOLUME=${NAME}_agent_secret
PORT=${JENKINS_PORT:-8080}
URL=${JENKINS_URL:-http://127.0.0.1:$PORT/}
# Absolute: `docker run -v NAME:...` with a relative NAME would mount a named volume, not the directory.
SECRETS=$(realpath -m -- "${JENKINS_SECRETS:-$PWD/secrets}")
SOCKET=/var/run/docker.sock
# Jenkins' uid in the images (jenkins/jenkins's user `jenkins`, the Dockerfile's USER): JCasC reads the secrets as it.
JENKINS_UID=1000
REQUIRED_SECRETS=(JENKINS_ADMIN_ID JENKINS_ADMIN_PASSWORD REGISTRY_USERNAME REGISTRY_PASSWORD)
OPTIONAL_SECRETS=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY GIT_USERNAME GIT_PASSWORD)
# How long `up` waits for the controller to answer (its HEALTHCHECK allows 180 s for the first start).
START_TIMEOUT_S=${JENKINS_START_TIMEOUT_S:-300}

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
    say "building $IMAGE (controller) and $AGENT_IMAGE (agent) from $HERE"
    docker build -t "$IMAGE" "$HERE"
    docker build --target agent -t "$AGENT_IMAGE" "$HERE"
}

# The agent's connection secret, as the controller hands it out to an admin: the first <argument> of
# computer/NODE/jenkins-agent.jnlp (hudson.slaves.SlaveComputer). Asked from inside the controller, as uid 1000
# with its own secret files, so the admin password never appears on this host's command lines.
agent_secret() {
    # shellcheck disable=SC2016  # expanded by the container's shell
    docker exec "$NAME" sh -c 'printf "user = \"%s:%s\"\n" "$(cat /run/secrets/JENKINS_ADMIN_ID)" "$(cat /run/secrets/JENKINS_ADMIN_PASSWORD)" |
        curl -fsS -K - "http://localhost:8080/computer/$1/jenkins-agent.jnlp"' sh "$AGENT_NODE" |
        tr -d '\r\n' |
        sed -n 's/.*<application-desc[^>]*>[[:space:]]*<argument>\([0-9a-f]\{64\}\)<\/argument>.*/\1/p'
}

wait_for_controller() {
    local waited=0
    say "waiting for $NAME to answer (up to $START_TIMEOUT_S s; the first start unpacks the plugins)"
    until docker exec "$NAME" curl -fsS -o /dev/null http://localhost:8080/login 2>/dev/null; do
        docker container inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null | grep -q true ||
            die "$NAME stopped while starting: docker logs $NAME" 1
        ((waited < START_TIMEOUT_S)) || die "$NAME did not answer within $START_TIMEOUT_S s: docker logs $NAME" 1
        sleep 5
        waited=$((waited + 5))
    done
}

up() {
    check_host
    if docker container inspect "$NAME" >/dev/null 2>&1; then
        say "container $NAME exists already: bash custom_jenkins/manage.sh down first to replace it"
        return
    fi
    docker image inspect "$IMAGE" >/dev/null 2>&1 && docker image inspect "$AGENT_IMAGE" >/dev/null 2>&1 || build
    # Before `docker run -d`: a refused start there would only show as a restarting container.
    check_in_image
    docker network inspect "$NETWORK" >/dev/null 2>&1 || docker network create "$NETWORK" >/dev/null
    local git_credential=()
    [[ -s $SECRETS/GIT_USERNAME ]] && git_credential=(-e GIT_CREDENTIALS_ID=git)
    # The controller: Jenkins' UI on 127.0.0.1:PORT only (the test bed's registry uses 5000 and the service the
    # pipeline deploys 8000, so the three never collide). No Docker socket: it runs no build.
    docker run -d --name "$NAME" --restart unless-stopped --network "$NETWORK" \
        -p "127.0.0.1:$PORT:8080" \
        -v "$HOME_VOLUME:/var/jenkins_home" \
        -v "$SECRETS:/run/secrets:ro" \
        -e "GIT_REPO_URL=$GIT_REPO_URL" -e "JENKINS_URL=$URL" "${git_credential[@]}" \
        "$IMAGE" >/dev/null
    wait_for_controller
    local secret
    secret=$(agent_secret) || true
    [[ $secret =~ ^[0-9a-f]{64}$ ]] ||
        die "could not read the agent's secret from $NAME (is node '$AGENT_NODE' in casc.yaml, and the admin login right?)" 1
    # The agent sees its own secret only, in a volume of its own (never -e: builds inherit the environment),
    # written through stdin by a throwaway container, so it survives a reboot of the host.
    printf '%s\n' "$secret" | docker run --rm -i --network none --user 0 --entrypoint sh \
        -v "$AGENT_SECRET_VOLUME:/secret" "$AGENT_IMAGE" \
        -c "cat >/secret/agent-secret && chown -R $JENKINS_UID:$JENKINS_UID /secret && chmod 0400 /secret/agent-secret"
    # The agent: the tools, the engine's socket (with its group) and a volume for the workspaces. --init: a real
    # PID 1 reaps the builds' orphans (durable-task's launcher expects one). It reaches the controller by name.
    docker run -d --name "$AGENT" --restart unless-stopped --network "$NETWORK" --init \
        -v "$AGENT_VOLUME:/home/jenkins/agent" \
        -v "$SOCKET:$SOCKET" \
        --group-add "$(stat -c %g "$SOCKET")" \
        -v "$AGENT_SECRET_VOLUME:/run/secrets:ro" \
        -e "JENKINS_URL=http://$NAME:8080/" -e "JENKINS_AGENT_NAME=$AGENT_NODE" \
        ${AWS_REGION:+-e "AWS_REGION=$AWS_REGION"} \
        "$AGENT_IMAGE" >/dev/null
    say "started $NAME on $URL and its agent $AGENT ('status' shows both)"
}

down() {
    local container
    for container in "$AGENT" "$NAME"; do
        if docker container inspect "$container" >/dev/null 2>&1; then
            docker rm -f "$container" >/dev/null
            say "removed $container; its volume is kept"
        else
            say "no container $container"
        fi
    done
    if docker network inspect "$NETWORK" >/dev/null 2>&1; then
        docker network rm "$NETWORK" >/dev/null && say "removed the network $NETWORK"
    fi
}

status() {
    local container
    for container in "$NAME" "$AGENT"; do
        docker container inspect -f '{{.Name}}: {{.State.Status}}, health {{if .State.Health}}{{.State.Health.Status}}{{else}}n/a{{end}}' "$container" 2>/dev/null ||
            say "no container $container"
    done
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
