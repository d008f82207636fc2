#!/usr/bin/env bash
# jenkins-agent: the agent image's entrypoint. Connects this container to the controller as the permanent agent
# that casc.yaml defines (an inbound agent over WebSocket), the way jenkins/inbound-agent's jenkins-agent script
# does: `java -jar agent.jar -url URL -secret SECRET -name NAME -webSocket -workDir DIR`.
#
# Settings (environment, set by manage.sh):
#   JENKINS_URL          the controller as this container reaches it (required), e.g. http://jenkins:8080/
#   JENKINS_AGENT_NAME   the node's name in casc.yaml (default: agent)
#   JENKINS_SECRET_FILE  a file holding the node's secret (default: /run/secrets/agent-secret); manage.sh reads it
#                        from the controller (computer/NAME/jenkins-agent.jnlp) once the controller is up
#   JENKINS_AGENT_WORKDIR the node's remoteFS in casc.yaml (default: /home/jenkins/agent)
#
# agent.jar is downloaded from the controller itself (JENKINS_URL/jnlpJars/agent.jar) at every start, so the
# agent's remoting always matches the controller's version, also after an upgrade of the controller alone.
set -euo pipefail

fail() { # message [exit code]
    printf 'jenkins-agent: error: %s\n' "$1" >&2
    exit "${2:-1}"
}

url=${JENKINS_URL:-}
name=${JENKINS_AGENT_NAME:-agent}
secret_file=${JENKINS_SECRET_FILE:-/run/secrets/agent-secret}
workdir=${JENKINS_AGENT_WORKDIR:-/home/jenkins/agent}

[[ -n $url ]] || fail "set JENKINS_URL: the controller's address as this container reaches it (bash custom_jenkins/manage.sh up does)" 2
[[ -r $secret_file && -s $secret_file ]] ||
    fail "no readable agent secret in $secret_file: manage.sh up writes it once the controller is up" 2
secret=$(tr -d '[:space:]' <"$secret_file")
[[ $secret =~ ^[0-9a-f]{64}$ ]] || fail "$secret_file does not hold an agent secret (64 hex digits)" 2
command -v java >/dev/null || fail "java is missing: this must run in the agent image (docker build --target agent)" 3

mkdir -p "$workdir"
jar=$workdir/agent.jar
# Python, not curl: the tool layer has python3 already, and no more than that is needed here.
python3 - "${url%/}/jnlpJars/agent.jar" "$jar.tmp" <<'EOF' || fail "cannot download agent.jar from $url (is the controller up and JENKINS_URL right?)" 3
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as answer, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(answer, out)
EOF
mv "$jar.tmp" "$jar"

# The secret goes on the command line, as jenkins/inbound-agent passes it: builds on this agent run as the same
# uid and could read it from the file as well. It only lets one connect as this agent.
exec java -jar "$jar" -url "$url" -secret "$secret" -name "$name" -webSocket -workDir "$workdir"
