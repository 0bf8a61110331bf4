#!/usr/bin/env bash
# Time `envmod update` with nothing to change against `envmod install` of a package that is
# already installed (nothing to change either): both read the environment, solve and decide.
#
#   bash benches/update.sh          # installs tools, builds, times, prints the ratio
#
# Goal: update <= 1.1x install.
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11    site Python
#   BENCH_RUNS=20                       timed runs per command (at least 10)
#   BENCH_WARMUP=3                      untimed warmup runs per command
#   BENCH_PKGS=20                       packages in the environment
#   BENCH_ENVMOD=PATH                   time this envmod binary instead of a release build
#
# Installs what it lacks: hyperfine (Debian apt), a release build of envmod. Results:
# target/bench-results/update-<timestamp>/ and target/bench-results/update-latest.txt.
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}
NPKGS=${BENCH_PKGS:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=update
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
((RUNS >= 10)) || die "BENCH_RUNS must be at least 10"
[[ -x $PY ]] || die "site Python $PY not found (set BENCH_PYTHON=...)"

bench_need_hyperfine
bench_envmod BENCH_ENVMOD
built=$BENCH_BUILT
envmod_source=$BENCH_SOURCE

T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-update-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/home" "$T/envs"
ENVMOD=$T/bin/envmod
cp "$built" "$ENVMOD"
cd "$T"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_|PIXI_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share XDG_CACHE_HOME=$T/home/.cache
export ENVMOD_SITE_CONFIG=$T/none.yaml
py_version=$("$PY" -I -c 'import sys; print(sys.version.split()[0])')

step "building $NPKGS noarch-python packages"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/chan" "$NPKGS"
"$ENVMOD" -q index "$T/chan"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")

step "creating the environment"
# shellcheck disable=SC2086
"$ENVMOD" -q create -p "$T/envs/e" -c "$T/chan" --site-python "$PY" --module-system none $SPECS

UPDATE="$ENVMOD update -q -p $T/envs/e --all"
INSTALL="$ENVMOD install -q -p $T/envs/e pkg000"

step "checking both commands once"
$UPDATE >/dev/null || die "failed: $UPDATE"
$INSTALL >/dev/null || die "failed: $INSTALL"
"$ENVMOD" update -p "$T/envs/e" --all 2>&1 | grep -q 'nothing to update' || die "update found something to change"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/update-$stamp
mkdir -p "$OUT"
step "update --all vs install of an installed package, both with nothing to change"
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$OUT/update.json" \
    --command-name "envmod update --all" "$UPDATE" \
    --command-name "envmod install pkg000" "$INSTALL" >&2

bench_ratio_json "update, nothing to change, $NPKGS packages" "envmod update --all" "install, nothing to change" "envmod install pkg000" "$OUT/update.json"
{
u=$(bench_median_ms "envmod update --all" "$OUT/update.json")
i=$(bench_median_ms "envmod install pkg000" "$OUT/update.json")
awk -v u="$u" -v i="$i" 'BEGIN { printf "update --all %.1f ms vs install of an installed package %.1f ms: ratio %.2fx (goal <= 1.1x)\n", u, i, u / i }'
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "packages: $NPKGS; site python $PY ($py_version); runs: $RUNS after $WARMUP warmup; medians"
echo "envmod: $("$ENVMOD" --version), $envmod_source"
echo "rerun: bash benches/update.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/update-latest.txt"
