#!/usr/bin/env bash
# One benchmark command: canary side by side with skopeo and crane on the
# real registry, and `canary smoke` on 1 → 10,000 virtual tenants; prints
# Markdown tables, and with `--write BENCHMARKS.md` replaces the generated
# block of that file.
#
#   scripts/bench.sh                          # full run, a few minutes
#   scripts/bench.sh --quick                  # fewer rounds, fleet up to 1,000
#   scripts/bench.sh --write BENCHMARKS.md    # also update the file
#
# Needs docker-registry and skopeo (scripts/test.sh installs them) and the
# shared tools folder beside the clone (crane). Measures the release build
# of the binary users run, built here first.
set -euo pipefail
cd "$(dirname "$0")/.."

for bin in docker-registry skopeo; do
    command -v "$bin" >/dev/null 2>&1 || { echo "error: $bin is not installed; run scripts/test.sh once (it installs it)" >&2; exit 1; }
done
tools_install="$(pwd)/../shared/tools/install.sh"
if [ -f "$tools_install" ]; then
    export PATH="$(bash "$tools_install"):$PATH"
else
    echo "warning: $tools_install is missing; crane rows will read 'not installed'" >&2
fi

cargo build --release -p canary-cli
exec cargo run --release -p canary-examples --bin bench -- --canary target/release/canary "$@"
