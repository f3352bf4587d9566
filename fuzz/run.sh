#!/bin/sh
# Runs the fuzz targets one at a time (2 shared cores: never in parallel).
#
#   fuzz/run.sh [SECONDS] [TARGET...]   fuzz each target for SECONDS (default 90)
#   fuzz/run.sh replay [TARGET...]      run the seeds and the local corpus once, no fuzzing
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Only stable Rust is
# installed here; RUSTC_BOOTSTRAP=1 lets it take the nightly flags
# cargo-fuzz passes (sanitizer coverage).
set -eu
cd "$(dirname "$0")"

mode=${1:-90}
[ $# -gt 0 ] && shift
targets=${*:-"www_authenticate image_ref tag digest git_sha tag_template suite_toml json_expect"}

for t in $targets; do
    mkdir -p "corpus/$t"
    set -- "corpus/$t"
    [ -d "seeds/$t" ] && set -- "$@" "seeds/$t"
    set -- "$@" --
    case $t in
        image_ref) set -- "$@" -dict=dicts/image_ref.dict ;;
        suite_toml) set -- "$@" -dict=dicts/suite.dict ;;
        # Structured input: let it be long from the start.
        json_expect) set -- "$@" -len_control=0 ;;
    esac
    if [ "$mode" = replay ]; then
        set -- "$@" -runs=0
    else
        set -- "$@" -max_total_time="$mode"
    fi
    echo "== $t" >&2
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$@"
done
