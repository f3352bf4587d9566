#!/usr/bin/env bash
# The Action's first step: put the prebuilt canary binary of the action's
# own version in "$CANARY_ROOT/bin/canary", checked against the release's
# SHA256SUMS, so a run takes seconds instead of a `cargo install`.
#
# Environment (set by action.yml; usable by hand for a test):
#   CANARY_ROOT          where the binary goes (bin/canary under it)
#   CANARY_INSTALL       auto (default): the release binary, else build from
#                        source; release: the release binary or fail;
#                        source: always build (skip this step)
#   CANARY_RELEASE_URL   where releases live: <url>/v<version>/<asset>.
#                        Default https://github.com/<action repo>/releases/download
#   CANARY_ACTION_REPOSITORY  owner/name of the action (github.action_repository)
#   GITHUB_ACTION_PATH   the action's checkout: its Cargo.toml gives the version
#   RUNNER_OS, RUNNER_ARCH    which binary (Linux/macOS, X64/ARM64)
#
# Writes `installed=true|false` to $GITHUB_OUTPUT: false means the next
# steps build from source. A binary whose sum does not match is refused:
# exit 3, with outcome=failed in the outputs and the step summary, and no
# fallback (a tampered or corrupted asset is not a missing one).
set -euo pipefail

out() { echo "$1" >>"${GITHUB_OUTPUT:-/dev/null}"; }
fallback() {
    echo "canary: $1; building from source instead"
    out "installed=false"
    exit 0
}
# stop OUTCOME CODE MESSAGE: the outputs and summary action.yml documents.
stop() {
    echo "::error title=canary action::$3"
    {
        echo "outcome=$1"
        echo "exit-code=$2"
        echo "promoted=false"
    } >>"${GITHUB_OUTPUT:-/dev/null}"
    {
        echo "### canary: $1 (exit $2)"
        echo
        echo "$3"
    } >>"${GITHUB_STEP_SUMMARY:-/dev/null}"
    exit "$2"
}
refuse() { stop failed 3 "$1"; }

mode="${CANARY_INSTALL:-auto}"
case "$mode" in
    "" | auto) mode=auto ;;
    release) ;;
    source)
        out "installed=false"
        exit 0
        ;;
    *) stop usage 2 "input install must be auto, release or source" ;;
esac
unavailable() {
    if [ "$mode" = release ]; then
        refuse "install: release, but $1"
    fi
    fallback "$1"
}

: "${CANARY_ROOT:?CANARY_ROOT must be set}"
action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}"
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$action_path/Cargo.toml" | head -n1)
[ -n "$version" ] || unavailable "the action's version could not be read from $action_path/Cargo.toml"

case "${RUNNER_OS:-}-${RUNNER_ARCH:-}" in
    Linux-X64) target=x86_64-unknown-linux-musl ;;
    Linux-ARM64) target=aarch64-unknown-linux-musl ;;
    macOS-X64) target=x86_64-apple-darwin ;;
    macOS-ARM64) target=aarch64-apple-darwin ;;
    *) unavailable "no prebuilt canary for ${RUNNER_OS:-?} ${RUNNER_ARCH:-?}" ;;
esac

base="${CANARY_RELEASE_URL:-}"
if [ -z "$base" ]; then
    repo="${CANARY_ACTION_REPOSITORY:-}"
    # A remote action is checked out under .../_actions/OWNER/NAME/REF.
    if [ -z "$repo" ] && [[ "$action_path" =~ /_actions/([^/]+)/([^/]+)/[^/]+$ ]]; then
        repo="${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
    fi
    [ -n "$repo" ] || unavailable "the action runs from a local checkout (uses: ./), which has no release"
    base="https://github.com/$repo/releases/download"
fi
base="${base%/}/v$version"
asset="canary-$version-$target.tar.gz"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() {
    curl --fail --silent --show-error --location --retry 3 --connect-timeout 10 --max-time 120 \
        --output "$tmp/$1" "$base/$1"
}
fetch SHA256SUMS 2>"$tmp/err" || unavailable "no release v$version at $base ($(tr -d '\r' <"$tmp/err" | head -n1))"
fetch "$asset" 2>"$tmp/err" || unavailable "release v$version has no $asset ($(tr -d '\r' <"$tmp/err" | head -n1))"

want=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")
[ -n "$want" ] || refuse "SHA256SUMS of release v$version has no line for $asset"
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum "$tmp/$asset" | cut -d' ' -f1)
else
    got=$(shasum -a 256 "$tmp/$asset" | cut -d' ' -f1)
fi
[ "$got" = "$want" ] || refuse "$asset of release v$version does not match SHA256SUMS (sha256 $got, expected $want): refusing to run it"

mkdir -p "$tmp/x" "$CANARY_ROOT/bin"
tar -xzf "$tmp/$asset" -C "$tmp/x"
[ -f "$tmp/x/canary" ] || refuse "$asset holds no canary binary at its top level"
install -m 0755 "$tmp/x/canary" "$CANARY_ROOT/bin/canary"
if ! ran=$("$CANARY_ROOT/bin/canary" --version 2>&1); then
    rm -f "$CANARY_ROOT/bin/canary"
    unavailable "the downloaded $asset does not run here: $ran"
fi
echo "canary: installed $asset (v$version, sha256 $got)"
out "installed=true"
