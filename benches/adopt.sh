#!/usr/bin/env bash
# Time `envmod adopt --from-modules` of a site's worth of conda-env-mod modulefiles.
#
#   bash benches/adopt.sh
#
# BENCH_ENVS (100) conda prefixes (hard-linked copies of one with Python and BENCH_PKGS
# packages), each with the Lua modulefile conda-env-mod's Lmod template writes
# (`conda-env/NAME-py3.12.0.lua`, depending on a site module), adopted in one command; every
# run starts from the prefixes as conda-env-mod left them. Goal: 1000 ms for 100
# environments (no peer does this: conda-env-mod writes one modulefile per command).
#
# Settings: BENCH_ENVS=100, BENCH_PKGS=5, BENCH_RUNS=5, BENCH_ENVMOD=PATH (time this binary
# instead of a release build). Needs hyperfine (Debian apt).
# Results: target/bench-results/adopt-<timestamp>/ and target/bench-results/adopt-latest.txt.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
NENVS=${BENCH_ENVS:-100}
NPKGS=${BENCH_PKGS:-5}
RUNS=${BENCH_RUNS:-5}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results
BENCH_NAME=adopt
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
bench_need_hyperfine
bench_envmod BENCH_ENVMOD
ENVMOD=$BENCH_BUILT

T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-adopt-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CACHE_HOME=$T/home/.cache XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share
export ENVMOD_SITE_CONFIG=$T/site.yaml
mkdir -p "$HOME" "$T/conda/envs" "$T/old/conda-env"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/chan" "$NPKGS" 0
python3 "$REPO/benches/conda/make_packages.py" python "$T/chan" 3.12.0 linux-64
"$ENVMOD" -q index "$T/chan"
echo "channels: [$T/chan]" > "$ENVMOD_SITE_CONFIG"

step "one conda prefix, copied $NENVS times"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")
# shellcheck disable=SC2086
"$ENVMOD" -q create -p "$T/base" --python 3.12 --module-system none $SPECS
rm -rf "$T/base/.envmod" "$T/base/bin/activate"
for i in $(seq -f '%03g' 0 $((NENVS - 1))); do
    cp -al "$T/base" "$T/conda/envs/e$i"
    cat >"$T/old/conda-env/e$i-py3.12.0.lua" <<LUA
-- created on Tue May  7 10:00:00 EDT 2024 by someone

depends_on("anaconda/2024.02-py311")
local modroot = "$T/conda/envs/e$i"
local pyver   = "3.12.0"

pushenv("CONDA_PREFIX",modroot)
pushenv("CONDA_DEFAULT_ENV",modroot)
prepend_path("LD_LIBRARY_PATH",modroot.."/lib")
prepend_path("PYTHONPATH",modroot.."/lib/python3.12/site-packages")
pushenv("PYTHONNOUSERSITE","1")

-- Using Python and tools from the environment
prepend_path("PATH",modroot.."/bin")
LUA
done

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/adopt-$STAMP
mkdir -p "$OUT"
RESET="rm -rf $T/conda/envs/*/.envmod $T/conda/envs/*/bin/activate $T/mods $XDG_DATA_HOME/envmod"
NAME="envmod adopt --from-modules ($NENVS envs)"
step "timing: $NAME"
hyperfine --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/adopt.json" \
    --prepare "$RESET" \
    -n "$NAME" "$ENVMOD -q adopt --from-modules $T/old --module-system lmod --module-root $T/mods"
MS=$(bench_median_ms "$NAME" "$OUT/adopt.json")
bench_ratio "envmod adopt --from-modules, $NENVS environments" "goal: 1000 ms" "$MS" 1000
{
    echo "envmod: $BENCH_SOURCE"
    printf 'adopt --from-modules of %s environments: %.0f ms (goal < 1000 ms: %s)\n' \
        "$NENVS" "$MS" "$(awk -v m="$MS" 'BEGIN { print (m < 1000 ? "met" : "missed") }')"
} | tee "$OUT/summary.txt"
cp "$OUT/summary.txt" "$RESULTS/adopt-latest.txt"
