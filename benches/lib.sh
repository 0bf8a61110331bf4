# Shared set-up of the benchmark scripts: sourced by benches/*.sh after they set BENCH_NAME
# (the script's name without .sh), REPO and TARGET_DIR.
#
# The ratio convention: when BENCH_RATIOS=FILE is set, each script appends one line per ratio
# it reports, tab-separated:
#     bench  what  peer  ours_ms  peer_ms  ratio
# (ratio = ours / peer, below 1 means envmod is faster, or under the goal when the peer is a
# goal). benches/all.sh collects the lines into one table and into docs/performance.md.
# shellcheck shell=bash

die() { echo "benches/$BENCH_NAME.sh: error: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }

BENCH_SUDO=()
if [[ $(id -u) != 0 ]]; then BENCH_SUDO=(sudo); fi
bench_apt_updated=
bench_apt_install() { # PACKAGE
    command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available"
    if [[ -z $bench_apt_updated ]]; then
        "${BENCH_SUDO[@]}" apt-get update -qq || die "apt-get update failed"
        bench_apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive "${BENCH_SUDO[@]}" apt-get install -y -qq "$1" >&2 \
        || die "apt-get install $1 failed"
}

bench_need_hyperfine() {
    if ! command -v hyperfine >/dev/null; then
        step "installing hyperfine from Debian apt"
        bench_apt_install hyperfine
        command -v hyperfine >/dev/null || die "hyperfine still not on PATH after apt-get install"
    fi
}

bench_need_gnu_time() {
    if ! /usr/bin/time --version 2>&1 | grep -q GNU; then
        step "installing GNU time from Debian apt"
        bench_apt_install time
        /usr/bin/time --version 2>&1 | grep -q GNU || die "no GNU time at /usr/bin/time after apt-get install"
    fi
}

# Sets BENCH_BUILT (the binary) and BENCH_SOURCE (where it came from): VAR's value when the
# variable named VAR (BENCH_ENVMOD, BENCH_AFTER) is set, else a release build of this tree.
bench_envmod() { # VAR
    local var=$1
    if [[ -n ${!var:-} ]]; then
        BENCH_BUILT=$(realpath "${!var}") || die "$var=${!var} not found"
        BENCH_SOURCE="given by $var ($BENCH_BUILT)"
    else
        command -v cargo >/dev/null || die "cargo is needed to build envmod (or set $var)"
        step "building envmod (cargo build --release)"
        if ! (cd "$REPO" && cargo build --release --locked --bin envmod >&2); then
            step "--locked build failed (Cargo.lock out of date?); retrying without --locked"
            (cd "$REPO" && cargo build --release --bin envmod >&2) || die "cargo build --release failed"
        fi
        BENCH_BUILT=$TARGET_DIR/release/envmod
        BENCH_SOURCE="release build of $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'this tree')"
        if [[ -n $(git -C "$REPO" status --porcelain -- src templates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
            BENCH_SOURCE+=" with uncommitted changes"
        fi
    fi
    [[ -x $BENCH_BUILT ]] || die "no envmod binary at $BENCH_BUILT"
}

# Median in ms of the runs of the command named NAME, pooled over hyperfine JSON exports.
bench_median_ms() { # NAME JSON...
    python3 - "$@" <<'EOF'
import json, statistics, sys
name, files = sys.argv[1], sys.argv[2:]
times = [t for f in files for r in json.load(open(f))["results"] if r["command"] == name for t in r["times"]]
if not times:
    sys.exit(f"no runs named {name!r} in {' '.join(files)}")
print(f"{statistics.median(times) * 1000:.3f}")
EOF
}

# Appends one ratio line to $BENCH_RATIOS (nothing when it is unset).
bench_ratio() { # WHAT PEER OURS_MS PEER_MS
    [[ -n ${BENCH_RATIOS:-} ]] || return 0
    [[ $1$2 != *$'\t'* ]] || die "a ratio label holds a tab: $1 / $2"
    awk -v b="$BENCH_NAME" -v w="$1" -v p="$2" -v o="$3" -v q="$4" \
        'BEGIN { printf "%s\t%s\t%s\t%.3f\t%.3f\t%.3f\n", b, w, p, o, q, (q > 0 ? o / q : 0) }' \
        >>"$BENCH_RATIOS"
}

# bench_ratio from hyperfine exports: the medians of the commands named OURS and PEER.
bench_ratio_json() { # WHAT OURS PEER_LABEL PEER JSON...
    local what=$1 ours=$2 label=$3 peer=$4 o p
    shift 4
    [[ -n ${BENCH_RATIOS:-} ]] || return 0
    o=$(bench_median_ms "$ours" "$@") || die "no median for '$ours'"
    p=$(bench_median_ms "$peer" "$@") || die "no median for '$peer'"
    bench_ratio "$what" "$label" "$o" "$p"
}
