#!/usr/bin/env bash
# Time `envmod create --clone` of an environment of BENCH_PKGS noarch-python packages
# against `envmod create` of the same packages, both from a warm package cache (goal: the
# clone takes no longer, ratio <= 1.0).
#
#   bash benches/clone.sh         # builds, times, prints a table
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11    site Python
#   BENCH_RUNS=15                       timed runs per command (at least 3)
#   BENCH_WARMUP=3                      untimed warmup runs per command
#   BENCH_PKGS=20                       packages (benches/conda/make_packages.py)
#   BENCH_TMPDIR=${TMPDIR:-/tmp}        where the scratch directory goes
#   BENCH_ENVMOD=PATH                   time this envmod binary instead of building one
#
# The two commands run in turn (benches/compare/alternate.py), so that a change in the
# machine's load falls on both alike.
# Results: target/bench-results/clone-<timestamp>/ and target/bench-results/clone-latest.txt.
set -euo pipefail

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
HELPERS=$REPO/benches/conda
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-15}
WARMUP=${BENCH_WARMUP:-3}
NPKGS=${BENCH_PKGS:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=clone
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 3)); then die "BENCH_RUNS must be a number >= 3 (got '$RUNS')"; fi
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number (got '$WARMUP')"
if ! [[ $NPKGS =~ ^[0-9]+$ ]] || ((NPKGS < 1 || NPKGS > 1000)); then
    die "BENCH_PKGS must be a number from 1 to 1000 (got '$NPKGS')"
fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
command -v python3 >/dev/null || die "python3 is needed to build the packages and read the results"
bench_envmod BENCH_ENVMOD
built=$BENCH_BUILT
[[ -x $built ]] || die "no envmod binary at $built"

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-clone-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/bin" "$T/home" "$T/xdg-config" "$T/xdg-data" "$T/xdg-cache" "$T/envs"
ENVMOD=$T/bin/envmod
cp "$built" "$ENVMOD"
cd "$T"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_|PIXI_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg-config XDG_DATA_HOME=$T/xdg-data XDG_CACHE_HOME=$T/xdg-cache
export ENVMOD_SITE_CONFIG=$T/none.yaml

step "building $NPKGS noarch-python conda packages"
python3 "$HELPERS/make_packages.py" channel "$T/chan" "$NPKGS" || die "building the conda packages failed"
"$ENVMOD" -q index "$T/chan" || die "envmod index failed"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")

C_CMD="$ENVMOD create -q -p $T/envs/created -c $T/chan --site-python $PY --module-system none $SPECS"
K_CMD="$ENVMOD create -q -p $T/envs/cloned --clone $T/envs/src --module-system none"
site_rel=lib/python$("$PY" -I -c 'import sys; print("%d.%d" % sys.version_info[:2])')/site-packages

check_imports() { # LABEL PREFIX
    "$2/bin/python" -c "
import importlib
for i in range($NPKGS):
    m = importlib.import_module(f'pkg{i:03d}')
    assert m.answer() == i, m
    assert m.__file__.startswith('$2/$site_rel/'), m.__file__
" || die "$1: the $NPKGS packages do not import from $2"
}

step "the source environment (which also fills the package cache), and each command once"
"$ENVMOD" create -q -p "$T/envs/src" -c "$T/chan" --site-python "$PY" --module-system none $SPECS \
    || die "envmod create of the source failed"
$C_CMD || die "envmod create failed"
$K_CMD || die "envmod create --clone failed"
check_imports "create" "$T/envs/created"
check_imports "create --clone" "$T/envs/cloned"

mkdir -p "$RESULTS"
OUT=$RESULTS/clone-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
step "timing: $RUNS runs each after $WARMUP warmup runs, the two commands in turn"
python3 "$REPO/benches/compare/alternate.py" "$RUNS" "$WARMUP" "$OUT/clone.json" \
    "envmod create --clone" "$T/envs/cloned" "$K_CMD" \
    "envmod create" "$T/envs/created" "$C_CMD" \
    || die "timing failed"
check_imports "create --clone" "$T/envs/cloned"

clone_ms=$(bench_median_ms "envmod create --clone" "$OUT/clone.json") || die "no median for the clone"
create_ms=$(bench_median_ms "envmod create" "$OUT/clone.json") || die "no median for create"
bench_ratio "create --clone of $NPKGS packages, warm cache (goal <= 1.0x)" "envmod create" "$clone_ms" "$create_ms"
{
    echo "envmod: $BENCH_SOURCE; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    awk -v c="$clone_ms" -v p="$create_ms" -v n="$NPKGS" 'BEGIN {
        printf "create --clone of %d packages: %.1f ms; create of the same: %.1f ms; ratio %.2fx (goal <= 1.0x)\n", n, c, p, c / p }'
} | tee "$OUT/summary.txt" "$RESULTS/clone-latest.txt"
