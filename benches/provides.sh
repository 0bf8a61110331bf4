#!/usr/bin/env bash
# Time the solve with module stand-ins and the site Python's packages against the same solve
# without them, and the cost of reading the site Python's distributions at create.
#
#   bash benches/provides.sh      # installs what it lacks, builds, times, prints a table
#
# 1. A synthetic channel with no archives: `make_packages.py big DIR NAMES VERSIONS --mpi`
#    (NAMES x VERSIONS x 2 records; every 50th package comes in an openmpi and an mpich build,
#    plus conda's openmpi and mpich and the `mpi` mutex). The default specs include pkg4500 and
#    pkg4000, which are MPI builds, so the stand-ins are in the closure.
# 2. `envmod create -p P -c BIG --site-python PY SPECS...` (it fails at the first download,
#    after the solve), in two arms run in alternating order, round after round:
#      with     BENCH_MODULES loaded (LOADEDMODULES, _LMFILES_ and MODULEPATH of real Tcl
#               modulefiles, as a module shell leaves them): module stand-ins pinned, their
#               virtual packages and constraints, and the site Python's packages
#      without  no module loaded, --ignore-site-packages
#    Each round times both arms once with hyperfine, then runs each once more with -v for the
#    in-process `loaded N records in` and `solved in`. The goal is with / without <= 1.05x.
# 3. The site Python's distributions at create, `create -n x -c CHANNEL --site-python PY`,
#    with and without --ignore-site-packages, alternating, round after round:
#      a. no specs (an empty channel)
#      b. one small noarch package from a local channel, installed (warm package cache)
#    Each round runs hyperfine with BENCH_SITE_BATCH runs per arm, then each arm once with -v
#    for envmod's own `read N site packages ... in X` line (where envmod prints it).
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11    site Python (Debian's, with python3-numpy)
#   BENCH_RUNS=15                       rounds in 2 and 3 (at least 10)
#   BENCH_SITE_BATCH=5                  hyperfine runs per arm per round in 3
#   BENCH_MODULES="openmpi/4.1.6 cuda/12.2"   what the "with" arm has loaded
#   BENCH_BIG_NAMES=5000                package names in 1
#   BENCH_BIG_VERSIONS=10               versions per name in 1 (2 builds each)
#   BENCH_BIG_SPECS="pkg4999 pkg4998 pkg4997 pkg4500 pkg4000"   what 2 solves for
#   BENCH_TMPDIR=${TMPDIR:-/tmp}        where the scratch directory goes
#   BENCH_ENVMOD=PATH                   time this envmod binary instead of building one
#
# Installs what it lacks: hyperfine, GNU time and (for Debian's site Python) python3-numpy
# from Debian apt, a release build of envmod. A tool that cannot be installed stops the
# script with an error; a missed target does not change the exit status.
#
# Results: target/bench-results/provides-<timestamp>/ and target/bench-results/provides-latest.txt.
set -euo pipefail

usage() { sed -n '2,45p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
HELPERS=$REPO/benches/provides

PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-15}
SITE_BATCH=${BENCH_SITE_BATCH:-5}
MODULES=${BENCH_MODULES:-openmpi/4.1.6 cuda/12.2}
BIG_NAMES=${BENCH_BIG_NAMES:-5000}
BIG_VERSIONS=${BENCH_BIG_VERSIONS:-10}
BIG_SPECS=${BENCH_BIG_SPECS:-pkg4999 pkg4998 pkg4997 pkg4500 pkg4000}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=provides
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
warn() { echo "benches/provides.sh: warning: $*" >&2; }

if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 10)); then
    die "BENCH_RUNS must be a number >= 10 (got '$RUNS')"
fi
if ! [[ $SITE_BATCH =~ ^[0-9]+$ ]] || ((SITE_BATCH < 1)); then
    die "BENCH_SITE_BATCH must be a number >= 1 (got '$SITE_BATCH')"
fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
command -v python3 >/dev/null || die "python3 is needed to build the channels and read the results"
read -ra MODULE_LIST <<<"$MODULES"
((${#MODULE_LIST[@]} > 0)) || die "BENCH_MODULES is empty: the \"with\" arm needs a module"
for m in "${MODULE_LIST[@]}"; do
    [[ $m =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*/[A-Za-z0-9._+-]+$ ]] \
        || die "BENCH_MODULES: '$m' is not a NAME/VERSION module name"
done

# --- hyperfine, GNU time, the site Python's numpy ---------------------------------------------
bench_need_hyperfine
bench_need_gnu_time
GNU_TIME=/usr/bin/time
if ! "$PY" -I -c 'import numpy' 2>/dev/null; then
    if [[ $PY == /usr/bin/python3* ]]; then
        step "installing python3-numpy from Debian apt (the site Python's own package)"
        bench_apt_install python3-numpy
        "$PY" -I -c 'import numpy' 2>/dev/null || die "$PY still cannot import numpy after apt-get install python3-numpy"
    else
        warn "$PY has no numpy; part 3 measures reading whatever distributions it has"
    fi
fi

# --- envmod, release build --------------------------------------------------------------------
bench_envmod BENCH_ENVMOD
built=$BENCH_BUILT
envmod_source=$BENCH_SOURCE
[[ -x $built ]] || die "no envmod binary at $built"

# --- an isolated scratch directory ------------------------------------------------------------
T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-provides-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/bin" "$T/home" "$T/xdg-config" "$T/xdg-data" "$T/xdg-cache" "$T/envs" "$T/v"
# A copy, so a rebuild of target/release during the run cannot change what is timed.
ENVMOD=$T/bin/envmod
cp "$built" "$ENVMOD"
cd "$T"

while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|UV_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_|PIXI_|__MODULES_|__LMOD_|_ModuleTable)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH MODULESHOME 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg-config XDG_DATA_HOME=$T/xdg-data XDG_CACHE_HOME=$T/xdg-cache
export ENVMOD_SITE_CONFIG=$T/none.yaml

# The modules of the "with" arm: real Tcl modulefiles on MODULEPATH, and the variables a module
# shell leaves after `module load` of each.
MODULEPATH_DIR=$T/modulefiles
lmfiles=()
for m in "${MODULE_LIST[@]}"; do
    mkdir -p "$MODULEPATH_DIR/${m%/*}"
    printf '#%%Module1.0\nmodule-whatis "%s, a site module (not installed on this machine)"\nsetenv %s_HOME /opt/site/%s\n' \
        "$m" "$(echo "${m%/*}" | tr '[:lower:]-' '[:upper:]_')" "$m" >"$MODULEPATH_DIR/$m"
    lmfiles+=("$MODULEPATH_DIR/$m")
done
LOADED=$(IFS=:; echo "${MODULE_LIST[*]}")
LMFILES=$(IFS=:; echo "${lmfiles[*]}")
# Both arms run through env(1) with MODULEPATH set; only the "with" arm has modules loaded.
WITH_ENV="env MODULEPATH=$MODULEPATH_DIR LOADEDMODULES=$LOADED _LMFILES_=$LMFILES"
WITHOUT_ENV="env MODULEPATH=$MODULEPATH_DIR"

# --- the channels -----------------------------------------------------------------------------
step "building the ${BIG_NAMES}x${BIG_VERSIONS}x2 channel with MPI variants, an empty channel and a one-package channel"
big_info=$(python3 "$REPO/benches/conda/make_packages.py" big "$T/big" "$BIG_NAMES" "$BIG_VERSIONS" --mpi) \
    || die "building the big channel failed"
mkdir -p "$T/empty/noarch"
"$ENVMOD" -q index "$T/empty" || die "envmod index of the empty channel failed"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/small" 1 || die "building the one-package channel failed"
"$ENVMOD" -q index "$T/small" || die "envmod index of the one-package channel failed"

# --- the commands -----------------------------------------------------------------------------
BIG_ARGS="create -p $T/envs/big -c $T/big --site-python $PY --module-system none"
B_WITH="$WITH_ENV $ENVMOD -q $BIG_ARGS $BIG_SPECS"
B_WITHOUT="$WITHOUT_ENV $ENVMOD -q $BIG_ARGS --ignore-site-packages $BIG_SPECS"
NAMED=$HOME/.envmod/envs/x
SITE_A="create -n x -c $T/empty --site-python $PY --module-system none"
SITE_B="create -n x -c $T/small --site-python $PY --module-system none --no-compile pkg000"
clean_named() { rm -rf "$HOME/.envmod"; }

# The "with" arm's -v output must show every module recorded and a stand-in the solution used;
# the "without" arm's must show none. Both must get past the solve and fail at the download.
check_big() { # ARM ERRFILE
    local arm=$1 err=$2
    grep -q "failed to install packages" "$err" \
        || die "$arm: envmod create on the fake channel failed before installing: $(cat "$err")"
    grep -q "solved in" "$err" || die "$arm: no 'solved in' line in envmod -v's output: $(cat "$err")"
    if [[ $arm == with ]]; then
        # One `X ← module M` line per stand-in: at info level when the solution used it, with
        # "nothing needed it" at debug level when not.
        for m in "${MODULE_LIST[@]}"; do
            grep -qF "← module $m" "$err" \
                || die "with: module $m gave the solve nothing (is it recorded, and does a module_provides rule match it?): $(cat "$err")"
        done
        grep "← module" "$err" | grep -vq "nothing needed it" \
            || die "with: no stand-in is in the solution (do the specs depend on MPI?): $(cat "$err")"
    else
        if grep -qE "^debug: (pinned|site packages favored|favored|constraints)|← module|read [0-9]+ site packages" "$err"; then
            die "without: the solve still has stand-ins: $(cat "$err")"
        fi
    fi
}

step "checking each command once (and warming the page cache and the interpreter cache)"
# BIG_SPECS and the commands are word lists on purpose (no spaces in $T, checked above).
# shellcheck disable=SC2086
{
    rm -rf "$T/envs/big"
    if $WITH_ENV "$ENVMOD" -v $BIG_ARGS $BIG_SPECS >/dev/null 2>"$T/check-with.txt"; then
        die "envmod create on the fake channel unexpectedly succeeded"
    fi
    check_big with "$T/check-with.txt"
    rm -rf "$T/envs/big"
    if $WITHOUT_ENV "$ENVMOD" -v $BIG_ARGS --ignore-site-packages $BIG_SPECS >/dev/null 2>"$T/check-without.txt"; then
        die "envmod create on the fake channel unexpectedly succeeded"
    fi
    check_big without "$T/check-without.txt"
    for f in "" --ignore-site-packages; do
        for cmd in "$SITE_A" "$SITE_B"; do
            clean_named
            "$ENVMOD" -v $cmd $f >/dev/null 2>"$T/check-site.txt" \
                || die "envmod $cmd $f failed: $(cat "$T/check-site.txt")"
        done
    done
}
[[ -f $NAMED/lib/python$("$PY" -I -c 'import sys; print("%d.%d" % sys.version_info[:2])')/site-packages/pkg000/__init__.py ]] \
    || die "create -n x pkg000 did not install pkg000 into $NAMED"
site_reads=no
if grep -qE "read [0-9]+ site packages?" "$T/check-site.txt" "$T/check-with.txt"; then site_reads=yes; fi

mkdir -p "$RESULTS"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/provides-$stamp
mkdir -p "$OUT/rounds"
cp "$T/check-with.txt" "$OUT/with-v.txt"
cp "$T/check-without.txt" "$OUT/without-v.txt"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 2: the big solve, with and without the stand-ins, interleaved -----------------------------
verbose_big() { # ARM ROUND
    local arm=$1 round=$2 env_cmd flags=""
    if [[ $arm == with ]]; then env_cmd=$WITH_ENV; else env_cmd=$WITHOUT_ENV; flags=--ignore-site-packages; fi
    rm -rf "$T/envs/big"
    # shellcheck disable=SC2086
    "$GNU_TIME" -v -o "$T/time.txt" $env_cmd "$ENVMOD" -v $BIG_ARGS $flags $BIG_SPECS \
        >/dev/null 2>"$T/err.txt" || true
    check_big "$arm" "$T/err.txt"
    python3 "$HELPERS/report.py" run "big-$arm" "$round" "$T/err.txt" "$T/time.txt" >>"$OUT/runs.jsonl"
}
step "part 2: $RUNS rounds, each: hyperfine of both arms (alternating order), then both with -v"
for ((i = 0; i < RUNS; i++)); do
    if ((i % 2 == 0)); then order=(without with); else order=(with without); fi
    args=()
    for arm in "${order[@]}"; do
        if [[ $arm == with ]]; then cmd=$B_WITH; else cmd=$B_WITHOUT; fi
        args+=(--command-name "$arm" "$cmd")
    done
    hyperfine --shell=none --runs 1 --ignore-failure --style none \
        --prepare "rm -rf $T/envs/big" --export-json "$OUT/rounds/big-$i.json" "${args[@]}" >&2
    for arm in "${order[@]}"; do verbose_big "$arm" "$i"; done
    echo "    round $((i + 1))/$RUNS done ($(cut -d' ' -f1 /proc/loadavg) load)" >&2
done

# --- 3: reading the site Python's distributions at create -------------------------------------
verbose_site() { # CASE ARM ROUND
    local case=$1 arm=$2 round=$3 cmd flags=""
    if [[ $case == a ]]; then cmd=$SITE_A; else cmd=$SITE_B; fi
    [[ $arm == reads ]] || flags=--ignore-site-packages
    clean_named
    # shellcheck disable=SC2086
    "$GNU_TIME" -v -o "$T/time.txt" "$ENVMOD" -v $cmd $flags >/dev/null 2>"$T/err.txt" \
        || die "envmod $cmd $flags failed: $(cat "$T/err.txt")"
    python3 "$HELPERS/report.py" run "site-$case-$arm" "$round" "$T/err.txt" "$T/time.txt" >>"$OUT/runs.jsonl"
}
step "part 3: $RUNS rounds, each: hyperfine ($SITE_BATCH runs per arm, alternating order), then each arm with -v"
for ((i = 0; i < RUNS; i++)); do
    for case in a b; do
        if [[ $case == a ]]; then cmd=$SITE_A; else cmd=$SITE_B; fi
        if ((i % 2 == 0)); then order=(reads ignores); else order=(ignores reads); fi
        args=()
        for arm in "${order[@]}"; do
            if [[ $arm == reads ]]; then args+=(--command-name "$arm" "$ENVMOD -q $cmd")
            else args+=(--command-name "$arm" "$ENVMOD -q $cmd --ignore-site-packages"); fi
        done
        hyperfine --shell=none --runs "$SITE_BATCH" --style none \
            --prepare "rm -rf $HOME/.envmod" --export-json "$OUT/rounds/site-$case-$i.json" "${args[@]}" >&2
        for arm in "${order[@]}"; do verbose_site "$case" "$arm" "$i"; done
    done
    echo "    round $((i + 1))/$RUNS done ($(cut -d' ' -f1 /proc/loadavg) load)" >&2
done

bench_ratio_json "solve with module stand-ins and site packages" with "the same solve without them" without "$OUT"/rounds/big-*.json
bench_ratio_json "create -n x, reading the site's distributions" reads "--ignore-site-packages" ignores "$OUT"/rounds/site-a-*.json
bench_ratio_json "create -n x pkg000, reading the site's distributions" reads "--ignore-site-packages" ignores "$OUT"/rounds/site-b-*.json

# --- report -----------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
fs_type=$(df --output=fstype "$T" 2>/dev/null | tail -n 1 || echo unknown)
py_version=$("$PY" -I -c 'import sys; print(sys.version.split()[0])')
numpy_version=$("$PY" -I -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo none)
{
python3 "$HELPERS/report.py" table "$OUT" "$RUNS" "$SITE_BATCH" "$big_info" "$site_reads"
echo
echo "what the \"with\" arm gave the solve (envmod -v):"
grep -E "^debug: (virtual packages|pinned|site packages favored|favored|constraints)|← module|site packages" "$OUT/with-v.txt" | sed 's/^/  /'
echo "specs: $BIG_SPECS; modules loaded in \"with\": $MODULES"
echo
echo "machine: $(nproc) cores ($cpu), $mem, load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg), scratch filesystem $fs_type"
echo "site python: $PY ($py_version, numpy $numpy_version)"
echo "envmod: $("$ENVMOD" --version), $envmod_source"
echo "hyperfine: $(hyperfine --version); rounds: $RUNS (2: 1 hyperfine run per arm per round; 3: $SITE_BATCH per arm per round), arms alternate which goes first"
echo "results: $OUT"
echo "rerun: bash benches/provides.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/provides-latest.txt"
