#!/usr/bin/env bash
# Time two envmod binaries side by side on the same work, in one run: a change to envmod
# must not make `create` or the conda engine slower.
#
#   BENCH_BASE=/path/to/old/envmod bash benches/compare.sh     # old binary vs this tree's
#
# Cases (each timed for both binaries, hyperfine --export-markdown):
#   first-day   envmod create -n e --module-system lmod      (site Python, no packages)
#   conda       envmod create -p P -c CHANNEL pkg000..pkgNNN (BENCH_PKGS noarch packages from a
#               local channel, warm package cache)
#   solve       envmod create against a repodata-only channel of BENCH_BIG_NAMES x 10 x 2
#               records (fails at download, after the solve)
#   install     envmod install of one more package into the conda case's environment (the
#               clone, the transaction and the swap), each binary on an environment it made
#
# Settings: BENCH_BASE (required), BENCH_ENVMOD (default: release build of this tree),
# BENCH_PYTHON=/usr/bin/python3.11, BENCH_RUNS=20, BENCH_PKGS=20, BENCH_BIG_NAMES=5000.
# Needs hyperfine (Debian apt; installed if missing). Prints a table; never fails on figures.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "benches/compare.sh: error: $*" >&2; exit 1; }
BASE=${BENCH_BASE:?set BENCH_BASE to the envmod binary to compare against}
[[ -x $BASE ]] || die "BENCH_BASE=$BASE is not executable"
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
NPKGS=${BENCH_PKGS:-20}
BIG=${BENCH_BIG_NAMES:-5000}
if ! command -v hyperfine >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >&2 \
        || die "hyperfine is missing: apt-get install hyperfine"
fi
if [[ -n ${BENCH_ENVMOD:-} ]]; then
    NEW=$(realpath "$BENCH_ENVMOD")
else
    (cd "$REPO" && cargo build --release --locked --bin envmod >&2) || die "cargo build --release failed"
    NEW=${CARGO_TARGET_DIR:-$REPO/target}/release/envmod
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-compare.XXXXXX")
trap 'rm -rf "$T"' EXIT
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/cfg XDG_DATA_HOME=$T/data XDG_CACHE_HOME=$T/cache
export ENVMOD_SITE_CONFIG=$T/none.yaml ENVMOD_MODULE_ROOT=$T/modules ENVMOD_ENVS_DIR=$T/envs
mkdir -p "$HOME" "$T/envs" "$T/modules"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/chan" "$((NPKGS + 1))" >/dev/null
"$NEW" -q index "$T/chan"
python3 "$REPO/benches/conda/make_packages.py" big "$T/big" "$BIG" 10 >/dev/null
specs=$(for ((i = 0; i < NPKGS; i++)); do printf 'pkg%03d ' "$i"; done)
"$NEW" -q create -p "$T/warm" -c "$T/chan" $specs --site-python "$PY" --module-system none
rm -rf "$T/warm"

clean='rm -rf '"$T"'/envs/* '"$T"'/modules/* '"$T"'/p '"$T"'/envs/.*.envmod-*'
run() {  # name, args (the binary is prepended)
    local name=$1; shift
    hyperfine -N -i --warmup 3 --runs "$RUNS" --prepare "sh -c '$clean'" \
        --command-name "$name before" "$BASE $*" \
        --command-name "$name after" "$NEW $*" \
        --export-markdown "$T/$name.md" >&2 || true
    cat "$T/$name.md"
}
run first-day "-q create -n e --module-system lmod --site-python $PY"
run conda "-q create -p $T/p -c $T/chan $specs --site-python $PY --module-system lmod"
run solve "-q create -p $T/p -c $T/big pkg4999 pkg4998 pkg4997 pkg4500 pkg4000 --site-python $PY --module-system none"
extra=$(printf 'pkg%03d' "$NPKGS")
made() {  # the conda case's environment, made by binary $1
    printf "sh -c '%s; %s -q create -p %s -c %s %s --site-python %s --module-system lmod'" \
        "$clean" "$1" "$T/p" "$T/chan" "$specs" "$PY"
}
hyperfine -N -i --warmup 3 --runs "$RUNS" \
    --prepare "$(made "$BASE")" --command-name "install before" "$BASE -q install -p $T/p $extra" \
    --prepare "$(made "$NEW")" --command-name "install after" "$NEW -q install -p $T/p $extra" \
    --export-markdown "$T/install.md" >&2 || true
cat "$T/install.md"
