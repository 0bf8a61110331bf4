#!/usr/bin/env bash
# Time envmod's conda engine against py-rattler and uv.
#
#   bash benches/conda.sh         # installs tools, builds, times, prints a table
#
# 1. `envmod create -p P -c CHANNEL SPEC...` of BENCH_PKGS noarch-python packages from a local
#    channel, warm package cache, vs a py-rattler script doing the same solve + install
#    (benches/conda/pyrattler_env.py) against the same package cache.
# 2. The same packages as wheels: `uv venv --system-site-packages` + `uv pip install
#    --no-index --find-links`, warm uv cache, vs the same envmod create.
# 3. Solving against a synthetic channel of NAMES x VERSIONS x 2 records that has no archives:
#    envmod create (which fails when it tries to download the first package, after solving)
#    vs py-rattler's solve(): wall time, peak RSS, and the in-process load / solve times.
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11    site Python
#   BENCH_RUNS=15                       timed runs per command in 1 and 2 (at least 10)
#   BENCH_WARMUP=3                      untimed warmup runs per command in 1 and 2
#   BENCH_PKGS=20                       packages in 1 and 2
#   BENCH_BIG_NAMES=5000                package names in 3
#   BENCH_BIG_VERSIONS=10               versions per name in 3 (2 builds each)
#   BENCH_BIG_SPECS="pkg4999 pkg4998 pkg4997 pkg4500 pkg4000"   what 3 solves for
#   BENCH_BIG_RUNS=10                   timed runs per command in 3 (at least 10)
#   BENCH_PYRATTLER_SPEC=py-rattler==0.28.0  and  BENCH_UV_SPEC=uv==0.13.8
#                                       what pip installs into target/bench-tools/conda-venv
#   BENCH_TMPDIR=${TMPDIR:-/tmp}        where the scratch directory goes
#   BENCH_ENVMOD=PATH                   time this envmod binary instead of building one
#
# Installs what it lacks: hyperfine and GNU time (Debian apt), py-rattler and uv (PyPI, with
# pip, into target/bench-tools/conda-venv), a release build of envmod. A tool that cannot be
# installed stops the script with an error; a missed target does not change the exit status.
#
# Results: target/bench-results/conda-<timestamp>/ and target/bench-results/conda-latest.txt.
set -euo pipefail

usage() { sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
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
BIG_NAMES=${BENCH_BIG_NAMES:-5000}
BIG_VERSIONS=${BENCH_BIG_VERSIONS:-10}
BIG_SPECS=${BENCH_BIG_SPECS:-pkg4999 pkg4998 pkg4997 pkg4500 pkg4000}
BIG_RUNS=${BENCH_BIG_RUNS:-10}
PYRATTLER_SPEC=${BENCH_PYRATTLER_SPEC:-py-rattler==0.28.0}
UV_SPEC=${BENCH_UV_SPEC:-uv==0.13.8}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
TOOLS=$TARGET_DIR/bench-tools/conda-venv
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=conda
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

for v in RUNS BIG_RUNS; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 10)); then
        die "BENCH_$v must be a number >= 10 (got '${!v}')"
    fi
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number (got '$WARMUP')"
if ! [[ $NPKGS =~ ^[0-9]+$ ]] || ((NPKGS < 1 || NPKGS > 1000)); then
    die "BENCH_PKGS must be a number from 1 to 1000 (got '$NPKGS')"
fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
command -v python3 >/dev/null || die "python3 is needed to build the packages and read the results"

bench_need_hyperfine
bench_need_gnu_time
GNU_TIME=/usr/bin/time

# --- py-rattler and uv, in a private venv -----------------------------------------------------
TPY=$TOOLS/bin/python
UV=$TOOLS/bin/uv
installed_versions() {
    "$TPY" -c 'import importlib.metadata as m
for d in ("py-rattler", "uv"):
    try: print(f"{d}=={m.version(d)}")
    except m.PackageNotFoundError: print(f"{d}==missing")' 2>/dev/null | tr '\n' ' '
}
want_versions="$PYRATTLER_SPEC $UV_SPEC "
if [[ $(installed_versions) != "$want_versions" ]] || ! "$TPY" -c 'import rattler' 2>/dev/null; then
    step "installing $PYRATTLER_SPEC and $UV_SPEC from PyPI into $TOOLS"
    mkdir -p "$(dirname "$TOOLS")"
    if [[ ! -x $TOOLS/bin/pip ]]; then
        rm -rf "$TOOLS"
        python3 -m venv "$TOOLS" || "$PY" -m venv "$TOOLS" \
            || die "cannot create a venv for py-rattler and uv (on Debian: apt-get install python3-venv)"
    fi
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "$PYRATTLER_SPEC" "$UV_SPEC" >&2 \
        || die "pip install $PYRATTLER_SPEC $UV_SPEC failed"
    "$TPY" -c 'import rattler' || die "py-rattler did not install into $TOOLS"
    "$UV" --version >/dev/null 2>&1 || die "uv did not install into $TOOLS"
fi

# --- envmod, release build --------------------------------------------------------------------
bench_envmod BENCH_ENVMOD
built=$BENCH_BUILT
envmod_source=$BENCH_SOURCE
[[ -x $built ]] || die "no envmod binary at $built"

# --- an isolated scratch directory ------------------------------------------------------------
T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-conda-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/bin" "$T/home" "$T/xdg-config" "$T/xdg-data" "$T/xdg-cache" "$T/uv-cache" \
    "$T/envs" "$T/out"
# A copy, so a rebuild of target/release during the run cannot change what is timed.
ENVMOD=$T/bin/envmod
cp "$built" "$ENVMOD"
cd "$T"

while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|UV_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_|PIXI_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg-config XDG_DATA_HOME=$T/xdg-data XDG_CACHE_HOME=$T/xdg-cache
export ENVMOD_SITE_CONFIG=$T/none.yaml
export UV_OFFLINE=1 UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1 UV_CACHE_DIR=$T/uv-cache UV_NO_PROGRESS=1
CACHE=$XDG_CACHE_HOME/rattler/cache # envmod's default: pkgs/ (packages) and repodata/
py_version=$("$PY" -I -c 'import sys; print(sys.version.split()[0])')
site_rel=lib/python${py_version%.*}/site-packages

# --- the packages -----------------------------------------------------------------------------
step "building $NPKGS noarch-python conda packages and wheels, and the ${BIG_NAMES}x${BIG_VERSIONS}x2 channel"
python3 "$HELPERS/make_packages.py" channel "$T/chan" "$NPKGS" || die "building the conda packages failed"
"$ENVMOD" -q index "$T/chan" || die "envmod index failed"
python3 "$HELPERS/make_packages.py" wheels "$T/wheels" "$NPKGS" || die "building the wheels failed"
big_info=$(python3 "$HELPERS/make_packages.py" big "$T/big" "$BIG_NAMES" "$BIG_VERSIONS") \
    || die "building the big channel failed"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")

E_CMD="$ENVMOD create -q -p $T/envs/envmod -c $T/chan --site-python $PY --module-system none $SPECS"
R_CMD="$TPY $HELPERS/pyrattler_env.py --channel file://$T/chan/ --cache $CACHE --python-version $py_version --prefix $T/envs/pyrattler $SPECS"
U_SH="$UV venv -q --system-site-packages --python $PY $T/envs/uv && $UV pip install -q --python $T/envs/uv/bin/python --no-index --find-links $T/wheels $SPECS"

check_imports() { # LABEL PYTHON SITE_PACKAGES [PYTHONPATH]
    local label=$1 python=$2 site=$3 path=${4:-}
    PYTHONPATH=$path "$python" -c "
import importlib, sys
for i in range($NPKGS):
    m = importlib.import_module(f'pkg{i:03d}')
    assert m.answer() == i, m
    assert m.__file__.startswith('$site/'), (m.__file__, '$site')
" || die "$label: the $NPKGS packages do not import from $site"
}
clean_envs() { rm -rf "$T/envs/envmod" "$T/envs/pyrattler" "$T/envs/uv"; }

# Fill the caches (envmod's package cache, shared with py-rattler; uv's cache) and check that
# every tool works before anything is timed.
step "filling the caches and checking each command once"
$E_CMD || die "envmod create failed"
check_imports "envmod create" "$T/envs/envmod/bin/python" "$T/envs/envmod/$site_rel"
$R_CMD || die "the py-rattler script failed"
sh -c "$U_SH" || die "uv venv / uv pip install failed"
clean_envs

mkdir -p "$RESULTS"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/conda-$stamp
mkdir -p "$OUT"

# --- 1 and 2: create with packages --------------------------------------------------------------
step "timing create with $NPKGS packages: $RUNS runs each after $WARMUP warmup runs"
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/create.json" --style basic \
    --command-name "envmod create" --prepare "rm -rf $T/envs/envmod" "$E_CMD" \
    --command-name "py-rattler solve+install" --prepare "rm -rf $T/envs/pyrattler" "$R_CMD" \
    --command-name "uv venv + uv pip install" --prepare "rm -rf $T/envs/uv" "sh -c '$U_SH'" \
    >&2
check_imports "envmod create" "$T/envs/envmod/bin/python" "$T/envs/envmod/$site_rel"
check_imports "py-rattler" "$PY" "$T/envs/pyrattler/$site_rel" "$T/envs/pyrattler/$site_rel"
check_imports "uv" "$T/envs/uv/bin/python" "$T/envs/uv/$site_rel"
step "all three prefixes import the $NPKGS packages"

# --- 1r and 2r: the same with real packages ------------------------------------------------------
# The first NPKGS wheels of the wheelhouse tests/provision.sh fills (ipykernel and what it
# needs: pure-Python ones and compiled ones such as debugpy and psutil), each repackaged as
# a linux-64 conda package holding the wheel's files; envmod and py-rattler install the conda
# packages, uv the wheels themselves (--no-deps: the same set).
REAL_WHEELS=${BENCH_WHEELHOUSE:-${ENVMOD_TEST_TOOLS:-$REPO/.test-tools}/wheelhouse}
if compgen -G "$REAL_WHEELS/*.whl" >/dev/null; then
    mapfile -t real_whls < <(find "$REAL_WHEELS" -maxdepth 1 -name '*.whl' | sort | head -n "$NPKGS")
    step "repackaging ${#real_whls[@]} real wheels from $REAL_WHEELS as conda packages"
    for w in "${real_whls[@]}"; do
        python3 "$HELPERS/make_packages.py" from-wheel "$T/real" "${py_version%.*}" "$w" >/dev/null \
            || die "repackaging $w failed"
    done
    "$ENVMOD" -q index "$T/real" || die "envmod index of the real packages failed"
    REAL_SPECS=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(sorted({r['name'] for k in ('packages', 'packages.conda') for r in d.get(k, {}).values()})))" "$T/real/linux-64/repodata.json")
    [[ $(wc -w <<<"$REAL_SPECS") -eq ${#real_whls[@]} ]] || die "the real channel holds $REAL_SPECS, not ${#real_whls[@]} packages"
    RE_CMD="$ENVMOD create -q -p $T/envs/envmod-real -c $T/real --site-python $PY --module-system none --ignore-site-packages $REAL_SPECS"
    RR_CMD="$TPY $HELPERS/pyrattler_env.py --channel file://$T/real/ --cache $CACHE --python-version $py_version --prefix $T/envs/pyrattler-real $REAL_SPECS"
    RU_SH="$UV venv -q --system-site-packages --python $PY $T/envs/uv-real && $UV pip install -q --python $T/envs/uv-real/bin/python --no-index --no-deps ${real_whls[*]}"
    step "real packages: filling the caches and checking each command once"
    $RE_CMD || die "envmod create of the real packages failed"
    $RR_CMD || die "the py-rattler script failed on the real packages"
    sh -c "$RU_SH" || die "uv pip install of the real wheels failed"
    "$T/envs/envmod-real/bin/python" -c 'import psutil, debugpy, jedi, packaging, sys; assert packaging.__file__.startswith(sys.prefix), packaging.__file__' \
        || die "the envmod environment of the real packages does not import them"
    rm -rf "$T/envs/envmod-real" "$T/envs/pyrattler-real" "$T/envs/uv-real"
    step "timing create with ${#real_whls[@]} real packages: $RUNS runs each after $WARMUP warmup runs"
    hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/real.json" --style basic \
        --command-name "envmod create" --prepare "rm -rf $T/envs/envmod-real" "$RE_CMD" \
        --command-name "py-rattler solve+install" --prepare "rm -rf $T/envs/pyrattler-real" "$RR_CMD" \
        --command-name "uv venv + uv pip install" --prepare "rm -rf $T/envs/uv-real" "sh -c '$RU_SH'" \
        >&2
    bench_ratio_json "create, ${#real_whls[@]} real packages (the wheelhouse's), warm cache" "envmod create" "py-rattler solve + install" "py-rattler solve+install" "$OUT/real.json"
    bench_ratio_json "create, ${#real_whls[@]} real packages (the wheelhouse's), warm cache" "envmod create" "uv venv + uv pip install (wheels)" "uv venv + uv pip install" "$OUT/real.json"
else
    echo "benches/conda.sh: no wheels in $REAL_WHEELS (run tests/provision.sh, or set BENCH_WHEELHOUSE): the real-packages rows are not measured" >&2
fi

# --- 3: solve against the big channel ----------------------------------------------------------
BE_CMD="$ENVMOD create -q -p $T/envs/big -c $T/big --site-python $PY --module-system none $BIG_SPECS"
BR_CMD="$TPY $HELPERS/pyrattler_env.py --channel file://$T/big/ --cache $CACHE --python-version $py_version $BIG_SPECS"
step "checking the big solve once"
# envmod must get past the solve and fail only when it fetches a package (there are none).
if $BE_CMD 2>"$T/big-err.txt"; then die "envmod create on the fake channel unexpectedly succeeded"; fi
grep -q "failed to install packages" "$T/big-err.txt" \
    || die "envmod create on the fake channel failed before installing: $(cat "$T/big-err.txt")"
$BR_CMD >/dev/null || die "py-rattler solve on the big channel failed"

step "timing the big solve: $BIG_RUNS runs each after 1 warmup run"
hyperfine --shell=none --warmup 1 --runs "$BIG_RUNS" --export-json "$OUT/big.json" --style basic \
    --command-name "envmod create (until the download fails)" --ignore-failure \
    --prepare "rm -rf $T/envs/big" "$BE_CMD" \
    --command-name "py-rattler solve()" --prepare "true" "$BR_CMD" \
    >&2

step "measuring peak RSS and in-process timings: $BIG_RUNS runs each"
: >"$OUT/big-runs.txt"
# BIG_SPECS and BR_CMD are word lists on purpose (no spaces in $T, checked above).
# shellcheck disable=SC2086
for ((i = 0; i < BIG_RUNS; i++)); do
    rm -rf "$T/envs/big"
    "$GNU_TIME" -v -o "$T/time.txt" "$ENVMOD" -v create -p "$T/envs/big" -c "$T/big" \
        --site-python "$PY" --module-system none $BIG_SPECS >/dev/null 2>"$T/err.txt" || true
    python3 "$HELPERS/parse_run.py" envmod "$T/err.txt" "$T/time.txt" >>"$OUT/big-runs.txt"
    "$GNU_TIME" -v -o "$T/time.txt" $BR_CMD --timings >/dev/null 2>"$T/err.txt" \
        || die "py-rattler solve failed: $(cat "$T/err.txt")"
    python3 "$HELPERS/parse_run.py" py-rattler "$T/err.txt" "$T/time.txt" >>"$OUT/big-runs.txt"
done

bench_ratio_json "create, $NPKGS noarch packages, warm cache" "envmod create" "py-rattler solve + install" "py-rattler solve+install" "$OUT/create.json"
bench_ratio_json "create, $NPKGS packages, warm cache" "envmod create" "uv venv + uv pip install (wheels)" "uv venv + uv pip install" "$OUT/create.json"
bench_ratio_json "solve, ${BIG_NAMES}x${BIG_VERSIONS}x2 records, whole process" "envmod create (until the download fails)" "py-rattler solve()" "py-rattler solve()" "$OUT/big.json"

# --- report -----------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
fs_type=$(df --output=fstype "$T" 2>/dev/null | tail -n 1 || echo unknown)
{
python3 "$HELPERS/report.py" "$OUT/create.json" "$OUT/big.json" "$OUT/big-runs.txt" "$NPKGS" "$big_info"
echo
echo "machine: $(nproc) cores ($cpu), $mem, load average at the end $(cut -d' ' -f1-3 /proc/loadavg), scratch filesystem $fs_type"
echo "site python: $PY ($py_version)"
echo "envmod: $("$ENVMOD" --version), $envmod_source"
echo "py-rattler: $("$TPY" -c 'import importlib.metadata as m; print(m.version("py-rattler"))') on $("$TPY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
echo "uv: $("$UV" --version); hyperfine: $(hyperfine --version)"
echo "runs: $RUNS after $WARMUP warmup (1, 2); $BIG_RUNS after 1 warmup (3); medians"
echo "results: $OUT"
echo "rerun: bash benches/conda.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/conda-latest.txt"
