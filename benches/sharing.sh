#!/usr/bin/env bash
# Time envmod's sharing commands, side by side with their peers, in one run.
#
#   bash benches/sharing.sh         # installs tools, builds, times, prints a table
#
# 1. `envmod create -f env.lock` (BENCH_PKGS noarch-python packages, warm package cache, no
#    solve) vs py-rattler reading the same lock and installing its records
#    (benches/sharing/pyrattler_lock.py) into the same package cache. Goal: <= 0.5x.
# 2. `envmod create -f environment.yml` vs `envmod create` with the same specs and channel.
#    Goal: <= 1.05x.
# 3. `envmod export --format lock` for one platform (what is installed) and for two
#    (linux-64 plus a solve for osx-arm64).
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11    site Python
#   BENCH_RUNS=20                       timed runs per command (at least 10)
#   BENCH_WARMUP=3                      untimed warmup runs per command
#   BENCH_PKGS=20                       packages
#   BENCH_PYRATTLER_SPEC=py-rattler==0.28.0   what pip installs into target/bench-tools/conda-venv
#   BENCH_ENVMOD=PATH                   time this envmod binary instead of a release build
#
# Installs what it lacks: hyperfine (Debian apt), py-rattler (PyPI, into a private venv), a
# release build of envmod. Results: target/bench-results/sharing-<timestamp>/ and
# target/bench-results/sharing-latest.txt.
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}
NPKGS=${BENCH_PKGS:-20}
PYRATTLER_SPEC=${BENCH_PYRATTLER_SPEC:-py-rattler==0.28.0}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
TOOLS=$TARGET_DIR/bench-tools/conda-venv
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=sharing
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
((RUNS >= 10)) || die "BENCH_RUNS must be at least 10"
[[ -x $PY ]] || die "site Python $PY not found (set BENCH_PYTHON=...)"

bench_need_hyperfine
TPY=$TOOLS/bin/python
if ! "$TPY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("py-rattler") != sys.argv[1].split("==")[1])' "$PYRATTLER_SPEC" 2>/dev/null; then
    step "installing $PYRATTLER_SPEC from PyPI into $TOOLS"
    mkdir -p "$(dirname "$TOOLS")"
    [[ -x $TOOLS/bin/pip ]] || python3 -m venv "$TOOLS" || die "cannot create a venv (apt-get install python3-venv)"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "$PYRATTLER_SPEC" >&2 || die "pip install $PYRATTLER_SPEC failed"
fi

bench_envmod BENCH_ENVMOD
built=$BENCH_BUILT
envmod_source=$BENCH_SOURCE

T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-sharing-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/home" "$T/envs"
ENVMOD=$T/bin/envmod
cp "$built" "$ENVMOD"
cd "$T"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_|PIXI_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share XDG_CACHE_HOME=$T/home/.cache
export ENVMOD_SITE_CONFIG=$T/none.yaml
CACHE=$XDG_CACHE_HOME/rattler/cache
py_version=$("$PY" -I -c 'import sys; print(sys.version.split()[0])')

step "building $NPKGS noarch-python packages and a stand-in python for osx-arm64"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/chan" "$NPKGS"
python3 "$REPO/benches/conda/make_packages.py" python "$T/chan" "$py_version" osx-arm64
"$ENVMOD" -q index "$T/chan"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")
COMMON="--site-python $PY --module-system none"

step "creating the source environment and exporting it"
# shellcheck disable=SC2086
"$ENVMOD" -q create -p "$T/envs/src" -c "$T/chan" $COMMON $SPECS
"$ENVMOD" -q export -p "$T/envs/src" --format lock -o "$T/env.lock"
"$ENVMOD" -q export -p "$T/envs/src" -o "$T/env.yml"

E_LOCK="$ENVMOD create -q -p $T/envs/lock -f $T/env.lock $COMMON"
R_LOCK="$TPY $REPO/benches/sharing/pyrattler_lock.py $T/env.lock $T/envs/pyrattler $CACHE/pkgs $py_version"
E_YML="$ENVMOD create -q -p $T/envs/yml -f $T/env.yml $COMMON"
E_SPECS="$ENVMOD create -q -p $T/envs/specs -c $T/chan $COMMON $SPECS"
X_ONE="$ENVMOD export -q -p $T/envs/src --format lock -o $T/one.lock"
X_TWO="$ENVMOD export -q -p $T/envs/src --format lock -o $T/two.lock --platform linux-64 --platform osx-arm64"

step "checking every command once"
for c in "$E_LOCK" "$R_LOCK" "$E_YML" "$E_SPECS" "$X_ONE" "$X_TWO"; do $c >/dev/null || die "failed: $c"; done
for p in lock pyrattler yml specs; do
    n=$(find "$T/envs/$p/lib" -maxdepth 3 -name 'pkg*' -path '*site-packages*' | grep -vc dist-info || true)
    ((n == NPKGS)) || die "$p: $n of $NPKGS packages installed"
done
grep -q osx-arm64 "$T/two.lock" || die "the two-platform lock has no osx-arm64"
rm -rf "$T/envs/lock" "$T/envs/pyrattler" "$T/envs/yml" "$T/envs/specs"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/sharing-$stamp
mkdir -p "$OUT"
hf() { hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$@" >&2; }
step "1: create -f env.lock vs py-rattler"
hf "$OUT/lock.json" \
    --command-name "envmod create -f env.lock" --prepare "rm -rf $T/envs/lock" "$E_LOCK" \
    --command-name "py-rattler install of the lock" --prepare "rm -rf $T/envs/pyrattler" "$R_LOCK"
step "2: create -f environment.yml vs create SPECS"
hf "$OUT/yml.json" \
    --command-name "envmod create -f environment.yml" --prepare "rm -rf $T/envs/yml" "$E_YML" \
    --command-name "envmod create SPECS" --prepare "rm -rf $T/envs/specs" "$E_SPECS"
step "3: export --format lock"
hf "$OUT/export.json" \
    --command-name "export lock, 1 platform" "$X_ONE" \
    --command-name "export lock, 2 platforms" "$X_TWO"

bench_ratio_json "create -f env.lock, $NPKGS packages" "envmod create -f env.lock" "py-rattler install of the lock" "py-rattler install of the lock" "$OUT/lock.json"
bench_ratio_json "create -f environment.yml" "envmod create -f environment.yml" "envmod create SPECS" "envmod create SPECS" "$OUT/yml.json"
{
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def med(path):
    return {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(open(f"{out}/{path}"))["results"]}
lock, yml, exp = med("lock.json"), med("yml.json"), med("export.json")
e, r = lock["envmod create -f env.lock"], lock["py-rattler install of the lock"]
print(f"1. create -f env.lock: envmod {e:.1f} ms, py-rattler {r:.1f} ms: ratio {e / r:.2f}x (goal <= 0.5x)")
f, s = yml["envmod create -f environment.yml"], yml["envmod create SPECS"]
print(f"2. create -f environment.yml {f:.1f} ms vs create SPECS {s:.1f} ms: ratio {f / s:.2f}x (goal <= 1.05x)")
print(f"3. export --format lock: 1 platform {exp['export lock, 1 platform']:.1f} ms, 2 platforms {exp['export lock, 2 platforms']:.1f} ms")
PY
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "packages: $NPKGS; site python $PY ($py_version); runs: $RUNS after $WARMUP warmup; medians"
echo "envmod: $("$ENVMOD" --version), $envmod_source"
echo "py-rattler: $("$TPY" -c 'import importlib.metadata as m; print(m.version("py-rattler"))')"
echo "rerun: bash benches/sharing.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/sharing-latest.txt"
