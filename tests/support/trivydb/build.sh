#!/usr/bin/env bash
# Build a fake Trivy vulnerability DB of made-up advisories into CACHE_DIR/db/.
#
# Trivy's real DB lives on a public registry that these machines cannot reach; this one lets the
# `vuln` scanner run for real (`trivy ... --cache-dir CACHE_DIR --skip-db-update`).
# Usage: build.sh CACHE_DIR [ENTRIES_JSON]   (entries default to advisories.json beside this script)
# Needs Debian's golang-go and golang-github-coreos-bbolt-dev; downloads nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_dir=${1:?usage: build.sh CACHE_DIR [ENTRIES_JSON]}
entries=${2:-$here/advisories.json}
bbolt_src=/usr/share/gocode/src/go.etcd.io/bbolt

command -v go >/dev/null || { echo "build.sh: 'go' is missing: apt-get install golang-go" >&2; exit 1; }
[[ -d $bbolt_src ]] || { echo "build.sh: bbolt source missing: apt-get install golang-github-coreos-bbolt-dev" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/trivydb-writer"
cp "$here/main.go" "$work/src/trivydb-writer/"
(cd "$work/src/trivydb-writer" &&
    GOPATH="$work:/usr/share/gocode" GO111MODULE=off GOPROXY=off go build -o "$work/trivydb-writer" .)

mkdir -p "$cache_dir/db"
rm -f "$cache_dir/db/trivy.db"
"$work/trivydb-writer" "$cache_dir/db/trivy.db" <"$entries"
cat >"$cache_dir/db/metadata.json" <<'JSON'
{"Version": 2, "NextUpdate": "2099-01-01T00:00:00Z", "UpdatedAt": "2024-01-01T00:00:00Z", "DownloadedAt": "2024-01-01T00:00:00Z"}
JSON
echo "fake trivy DB written to $cache_dir/db"
