#!/usr/bin/env bash
# Time `envmod create` against `python -m venv` and `uv venv` on the same site Python.
#
#   bash benches/create.sh            # everything: installs tools, builds, times, prints a table
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11  site Python used by all tools
#   BENCH_RUNS=20                     timed runs per command (at least 10)
#   BENCH_WARMUP=3                    untimed warmup runs per command
#   BENCH_UV_SPEC=uv==0.13.8          what pip installs into target/bench-tools/venv
#   BENCH_TMPDIR=${TMPDIR:-/tmp}      where the scratch directory goes (its filesystem matters)
#   BENCH_ENVMOD=PATH                 time this envmod binary instead of building one
#
# Installs what it lacks: hyperfine (Debian apt), uv (PyPI, with pip, into a private venv under
# target/bench-tools/, never system-wide), and a release build of envmod. A tool that cannot
# be installed stops the script with an error. The timings themselves are only reported: a
# missed target does not change the exit status.
#
# Results: target/bench-results/create-<timestamp>.json (hyperfine's export) and
# target/bench-results/create-latest.{json,txt}.
set -euo pipefail

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}
UV_SPEC=${BENCH_UV_SPEC:-uv==0.13.8}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
TOOLS=$TARGET_DIR/bench-tools
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=create
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 10)); then
    die "BENCH_RUNS must be a number >= 10 (got '$RUNS')"
fi
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number (got '$WARMUP')"
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
"$PY" -I -c 'import venv' 2>/dev/null || die "$PY has no venv module (on Debian: apt-get install python3-venv)"
command -v python3 >/dev/null || die "python3 is needed to read the results"

bench_need_hyperfine

# --- uv, in a private venv ------------------------------------------------------------------
UV=$TOOLS/venv/bin/uv
want_uv_version=${UV_SPEC#uv==}
have_uv_version=$("$UV" --version 2>/dev/null | awk '{print $2}' || true)
if [[ -z $have_uv_version || ($UV_SPEC == uv==* && $have_uv_version != "$want_uv_version") ]]; then
    step "installing $UV_SPEC from PyPI into $TOOLS/venv"
    mkdir -p "$TOOLS"
    if [[ ! -x $TOOLS/venv/bin/pip ]]; then
        rm -rf "$TOOLS/venv"
        tools_py=$(command -v python3)
        "$tools_py" -m venv "$TOOLS/venv" \
            || "$PY" -m venv "$TOOLS/venv" \
            || die "cannot create a venv for uv (on Debian: apt-get install python3-venv)"
    fi
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "$UV_SPEC" >&2 \
        || die "pip install $UV_SPEC failed"
    "$UV" --version >/dev/null 2>&1 || die "uv did not install into $TOOLS/venv"
fi

# --- envmod, release build ------------------------------------------------------------------
bench_envmod BENCH_ENVMOD
ENVMOD=$BENCH_BUILT
envmod_source=$BENCH_SOURCE
[[ -x $ENVMOD ]] || die "no envmod binary at $ENVMOD"

# --- an isolated scratch directory -------------------------------------------------------------
T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/home" "$T/xdg-config" "$T/xdg-data" "$T/xdg-cache" "$T/modules" \
    "$T/envs" "$T/envmod" "$T/envmod-cold" "$T/envmod-none" "$T/venv" "$T/uv" "$T/uv-nocache" "$T/uv-cache"
cd "$T"

# Nothing from the caller's shell, config files or loaded modules may change what is timed.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|UV_|VIRTUAL_ENV|CONDA_|PYTHON)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH __LMOD_REF_COUNT_MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg-config XDG_DATA_HOME=$T/xdg-data XDG_CACHE_HOME=$T/xdg-cache
export ENVMOD_SITE_CONFIG=$T/none.yaml ENVMOD_MODULE_ROOT=$T/modules ENVMOD_ENVS_DIR=$T/envs
# uv: never touch the network, never download a Python, ignore user/project config, and keep
# its cache private to this run (warmed by the warmup runs, as on any machine where uv is used).
export UV_OFFLINE=1 UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1 UV_CACHE_DIR=$T/uv-cache
export UV_NO_PROGRESS=1
# envmod may keep what it learnt about an interpreter under XDG_CACHE_HOME; removing this
# before each run of the "nothing cached" row makes envmod ask the interpreter every time.
NOCACHE="$T/xdg-cache/envmod $T/home/.cache/envmod"

# Check each command once before timing it, so a broken tool fails here with its own message.
step "checking each command once"
"$ENVMOD" create -p "$T/envmod/env" --site-python "$PY" --module-system lmod -q \
    || die "envmod create failed"
[[ -f $T/envmod/env/pyvenv.cfg ]] || die "envmod create left no pyvenv.cfg"
ls "$T/modules/env/"* >/dev/null 2>&1 || die "envmod create wrote no modulefile under $T/modules/env"
"$PY" -m venv --system-site-packages --without-pip "$T/venv/env" || die "$PY -m venv failed"
"$UV" venv -q --system-site-packages --python "$PY" "$T/uv/env" || die "uv venv failed"
"$T/uv/env/bin/python" -c 'import sys; assert sys.prefix != sys.base_prefix' || die "uv env is broken"
rm -rf "$T/envmod/env" "$T/modules/env" "$T/venv/env" "$T/uv/env"

# --- timing ---------------------------------------------------------------------------------
mkdir -p "$RESULTS"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
JSON=$RESULTS/create-$stamp.json
step "timing: $RUNS runs each after $WARMUP warmup runs (scratch dir $T)"
# --shell=none: no shell between hyperfine and the tool, so nothing needs subtracting.
# Each command gets its own --prepare (same order as the commands) that removes its target.
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON" --style basic \
    --command-name "envmod create (lmod)" \
    --prepare "rm -rf $T/envmod/env $T/modules/env" \
    "$ENVMOD create -p $T/envmod/env --site-python $PY --module-system lmod" \
    --command-name "envmod create (lmod), nothing cached" \
    --prepare "rm -rf $T/envmod-cold/env-cold $T/modules/env-cold $NOCACHE" \
    "$ENVMOD create -p $T/envmod-cold/env-cold --site-python $PY --module-system lmod" \
    --command-name "envmod create (--module-system none)" \
    --prepare "rm -rf $T/envmod-none/env" \
    "$ENVMOD create -p $T/envmod-none/env --site-python $PY --module-system none" \
    --command-name "python -m venv" \
    --prepare "rm -rf $T/venv/env" \
    "$PY -m venv --system-site-packages --without-pip $T/venv/env" \
    --command-name "uv venv" \
    --prepare "rm -rf $T/uv/env" \
    "$UV venv --system-site-packages --python $PY $T/uv/env" \
    --command-name "uv venv --no-cache" \
    --prepare "rm -rf $T/uv-nocache/env" \
    "$UV venv --no-cache --system-site-packages --python $PY $T/uv-nocache/env" \
    >&2
cp "$JSON" "$RESULTS/create-latest.json"
for row in "envmod create (lmod)" "envmod create (lmod), nothing cached"; do
    for peer in "python -m venv" "uv venv"; do bench_ratio_json "${row#envmod }" "$row" "$peer" "$peer" "$JSON"; done
done

# --- report ---------------------------------------------------------------------------------
py_version=$("$PY" -I -c 'import sys; print(sys.version.split()[0])')
envmod_version=$("$ENVMOD" --version)
uv_version=$("$UV" --version)
hf_version=$(hyperfine --version)
fs_type=$(df --output=fstype "$T" 2>/dev/null | tail -n 1 || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
startup_ms=$(python3 - "$PY" <<'EOF'
import subprocess, sys, time
py = sys.argv[1]
best = []
for _ in range(15):
    t = time.perf_counter(); subprocess.run([py, "-I", "-c", "pass"], check=True)
    best.append(time.perf_counter() - t)
best.sort(); print(f"{best[len(best)//2]*1000:.1f}")
EOF
)

{
python3 - "$JSON" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
ms = {r["command"]: r for r in results}
venv = ms["python -m venv"]["median"]
uv = ms["uv venv"]["median"]
rows = [("tool", "median ms", "min ms", "max ms", "vs venv", "vs uv")]
for r in results:
    rows.append((r["command"], f'{r["median"]*1000:.1f}', f'{r["min"]*1000:.1f}',
                 f'{r["max"]*1000:.1f}', f'{r["median"]/venv:.2f}x', f'{r["median"]/uv:.2f}x'))
w = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for i, row in enumerate(rows):
    print("  ".join(c.ljust(w[0]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(row)))
    if i == 0:
        print("  ".join("-" * x for x in w))
print()
for name in ("envmod create (lmod)", "envmod create (lmod), nothing cached"):
    e = ms[name]["median"]
    verdict = "MET" if e < venv / 2 else "NOT MET"
    print(f"target: {name} under half the time of python -m venv "
          f"({e*1000:.1f} ms vs {venv/2*1000:.1f} ms): {verdict}")
EOF
echo
echo "machine: nproc=$(nproc) ($cpu), load average $(cut -d' ' -f1-3 /proc/loadavg), scratch filesystem $fs_type"
echo "site python: $PY ($py_version), '$PY -I -c pass' median ${startup_ms} ms"
echo "envmod: $envmod_version, $envmod_source ($ENVMOD)"
echo "uv: $uv_version ($UV; 'uv venv' uses a warm private cache, 'uv venv --no-cache' none)"
echo "hyperfine: $hf_version; $RUNS runs, $WARMUP warmup, --shell=none, target removed by --prepare before each run"
echo "results: $JSON"
echo "rerun: bash benches/create.sh   (BENCH_PYTHON=, BENCH_RUNS=, BENCH_WARMUP= to change)"
} | tee "$RESULTS/create-latest.txt"
