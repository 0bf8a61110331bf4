#!/usr/bin/env bash
# Time a Jupyter kernel's start, from `start_kernel()` to the first `execute_reply`, for envmod's
# kernelspec against a plain kernelspec of the same Python and the same ipykernel, in one run.
#
#   bash benches/kernel.sh
#
# 1. A module tree of Lua modulefiles (BENCH_MODULES, each setting a variable and prepending a
#    directory to PATH) under Lmod. In a clean bash (env -i, the Lmod init sourced, MODULEPATH
#    set to the tree, nothing loaded):
#      modules      `envmod create` with BENCH_MODULES loaded, ipykernel installed with the
#                   environment's pip, `envmod kernel add --prefix JUP`: its launcher loads
#                   the modules, sources bin/activate, then starts ipykernel
#      no modules   the same with no module loaded: the launcher alone
#      plain        a kernel.json of `ENV/bin/python -m ipykernel_launcher -f {connection_file}`
#                   on the first environment's Python: what `ipykernel install` writes
# 2. benches/kernel/start.py (jupyter_client's KernelManager) starts each kernel once per round,
#    the order turned round every other round, and times the start up to the reply to its
#    first cell. Each kernel first runs a cell that must see the modules' variable (modules,
#    plain: none) and the environment's sys.prefix.
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11   site Python of the environments
#   BENCH_RUNS=20                      rounds (at least 3)
#   BENCH_MODULES="gcc/12.2 openmpi/4.1"   what the "modules" environment records
#   BENCH_JUPYTER_PYTHON=PATH          a Python with jupyter_client that drives the kernels;
#                                      default $ENVMOD_TEST_PEERS_PYTHON, else the peers venv
#                                      tests/provision.sh made, else the environment's Python
#   BENCH_WHEELHOUSE=DIR               where pip finds ipykernel and its dependencies; default
#                                      the wheelhouse tests/provision.sh made, else PyPI
#   BENCH_LMOD_INIT                    Lmod's init script for bash; default as the tests find
#                                      it (ENVMOD_TEST_LMOD_INIT, or the env.sh of
#                                      ${ENVMOD_TEST_TOOLS:-<repo>/.test-tools})
#   BENCH_ENVMOD=PATH                  time this envmod binary instead of building one
#   BENCH_RATIOS=FILE                  append the ratios to FILE (see benches/lib.sh)
#
# Installs what it lacks: a release build of envmod. Results:
# target/bench-results/kernel-<timestamp>/ and target/bench-results/kernel-latest.txt.
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BENCH_NAME=kernel
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
cd "$REPO"

PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
MODULES=${BENCH_MODULES:-gcc/12.2 openmpi/4.1}
RESULTS=$TARGET_DIR/bench-results
TOOLS=${ENVMOD_TEST_TOOLS:-$REPO/.test-tools}

if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 3)); then die "BENCH_RUNS must be a number >= 3 (got '$RUNS')"; fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
read -ra MODULE_LIST <<<"$MODULES"
((${#MODULE_LIST[@]} > 0)) || die "BENCH_MODULES is empty: the \"modules\" kernel needs a module"
for m in "${MODULE_LIST[@]}"; do
    [[ $m =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*/[A-Za-z0-9._+-]+$ ]] || die "BENCH_MODULES: '$m' is not a NAME/VERSION module name"
done
if [[ -z ${BENCH_LMOD_INIT:-${ENVMOD_TEST_LMOD_INIT:-}} && -r $TOOLS/env.sh ]]; then
    # shellcheck disable=SC1091
    source "$TOOLS/env.sh"
fi
LMOD_INIT=${BENCH_LMOD_INIT:-${ENVMOD_TEST_LMOD_INIT:-}}
[[ -n $LMOD_INIT && -r $LMOD_INIT ]] \
    || die "no Lmod init script ('$LMOD_INIT'): run tests/provision.sh (or set ENVMOD_TEST_TOOLS to where it put them), or set BENCH_LMOD_INIT"
WHEELHOUSE=${BENCH_WHEELHOUSE:-}
if [[ -z $WHEELHOUSE && -d $TOOLS/wheelhouse ]]; then WHEELHOUSE=$TOOLS/wheelhouse; fi
JPY=${BENCH_JUPYTER_PYTHON:-${ENVMOD_TEST_PEERS_PYTHON:-}}
if [[ -z $JPY && -x $TOOLS/peers/bin/python ]]; then JPY=$TOOLS/peers/bin/python; fi
bench_envmod BENCH_ENVMOD

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-kernel-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/bin" "$T/home" "$T/tree"
cp "$BENCH_BUILT" "$T/bin/envmod"
for m in "${MODULE_LIST[@]}"; do
    var=FAKE_$(echo "${m%/*}" | tr '[:lower:]-' '[:upper:]_')_VERSION
    mkdir -p "$T/tree/${m%/*}" "$T/opt/$m/bin"
    printf 'whatis("%s (bench tree)")\nsetenv("%s", "%s")\nprepend_path("PATH", "%s")\n' \
        "$m" "$var" "${m#*/}" "$T/opt/$m/bin" >"$T/tree/$m.lua"
done
if [[ -n $WHEELHOUSE ]]; then PIP_FROM=(--no-index --find-links "$WHEELHOUSE"); else
    PIP_FROM=()
    echo "benches/kernel.sh: no wheelhouse (BENCH_WHEELHOUSE, or tests/provision.sh's): pip installs ipykernel from PyPI" >&2
fi

# Everything runs in a clean bash with Lmod set up and nothing loaded, as a login leaves it.
# The code is bash, with the scratch paths in it (no spaces, checked above).
in_lmod() { # CODE
    env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$T/home" USER="${USER:-$(id -un)}" \
        XDG_CONFIG_HOME="$T/home/.config" XDG_DATA_HOME="$T/home/.local/share" XDG_CACHE_HOME="$T/home/.cache" \
        ENVMOD_SITE_CONFIG="$T/none.yaml" JUPYTER_PLATFORM_DIRS=1 \
        bash --norc --noprofile -c "set -euo pipefail; source $LMOD_INIT; export MODULEPATH=$T/tree; $1"
}
E=$T/bin/envmod
JUP=$T/jup
KERNELS=$JUP/share/jupyter/kernels
step "creating the environments, installing ipykernel into them, adding their kernels"
in_lmod "module load ${MODULE_LIST[*]}
$E -q create -p $T/env-mod --site-python $PY --module-system lmod" || die "envmod create failed"
in_lmod "$E -q create -p $T/env-none --site-python $PY --module-system lmod" || die "envmod create failed"
for e in env-mod env-none; do
    in_lmod "$T/$e/bin/pip install -q --disable-pip-version-check ${PIP_FROM[*]} ipykernel" >&2 \
        || die "$e: pip install ipykernel failed"
done
in_lmod "$E -q kernel add -p $T/env-mod --prefix $JUP --name envmod-modules
$E -q kernel add -p $T/env-none --prefix $JUP --name envmod-none" || die "envmod kernel add failed"
grep -q "${MODULE_LIST[0]}" "$KERNELS/envmod-modules/kernel.json" \
    || die "the kernelspec of env-mod does not load ${MODULE_LIST[0]}: $(cat "$KERNELS/envmod-modules/kernel.json")"
mkdir -p "$KERNELS/plain"
printf '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "plain", "language": "python"}\n' \
    "$T/env-mod/bin/python" >"$KERNELS/plain/kernel.json"
if [[ -z $JPY ]]; then JPY=$T/env-mod/bin/python; fi
"$JPY" -c 'import jupyter_client' 2>/dev/null \
    || die "$JPY has no jupyter_client (pip install jupyter_client, or set BENCH_JUPYTER_PYTHON)"

first_var=FAKE_$(echo "${MODULE_LIST[0]%/*}" | tr '[:lower:]-' '[:upper:]_')_VERSION
step "checking each kernel once"
DRIVER=$REPO/benches/kernel/start.py
in_lmod "$JPY $DRIVER check $KERNELS envmod-modules '${MODULE_LIST[0]#*/} $T/env-mod'
$JPY $DRIVER check $KERNELS envmod-none 'None $T/env-none'
$JPY $DRIVER check $KERNELS plain 'None $T/env-mod'" >"$T/check.txt" 2>&1 \
    || die "a kernel failed its first cell ($first_var and sys.prefix): $(tail -n 20 "$T/check.txt")"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/kernel-$stamp
mkdir -p "$OUT"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
step "timing: $RUNS rounds, each kernel once per round"
in_lmod "$JPY $DRIVER time $KERNELS $RUNS $OUT/times.json envmod-modules envmod-none plain" \
    || die "timing the kernels failed"

# --- report -----------------------------------------------------------------------------------
{
python3 - "$OUT/times.json" "$MODULES" <<'PY'
import json, statistics, sys
t = json.load(open(sys.argv[1]))
med = {k: statistics.median(v) * 1000 for k, v in t.items()}
rows = [("kernel", "median ms", "min ms", "max ms", "vs plain", "per-round ratio")]
for k, label in (("envmod-modules", f"envmod kernel, loads {sys.argv[2]}"),
                 ("envmod-none", "envmod kernel, no modules"), ("plain", "plain kernelspec")):
    pr = statistics.median(a / b for a, b in zip(t[k], t["plain"]))
    rows.append((label, f"{med[k]:.0f}", f"{min(t[k]) * 1000:.0f}", f"{max(t[k]) * 1000:.0f}",
                 f"{med[k] / med['plain']:.2f}x", f"{pr:.2f}x"))
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for i, r in enumerate(rows):
    print("  ".join(x.ljust(w[0]) if j == 0 else x.rjust(w[j]) for j, x in enumerate(r)))
    if i == 0:
        print("  ".join("-" * x for x in w))
PY
echo
echo "start_kernel() to the execute_reply of the first cell, jupyter_client $("$JPY" -c 'import jupyter_client; print(jupyter_client.__version__)') on $JPY"
echo "ipykernel $("$T/env-mod/bin/python" -c 'import ipykernel; print(ipykernel.__version__)') on $PY; Lmod: $LMOD_INIT"
echo "machine: $(nproc) cores, load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "envmod: $("$E" --version), $BENCH_SOURCE"
echo "rounds: $RUNS, the order turned round every other round; medians"
echo "results: $OUT"
echo "rerun: bash benches/kernel.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/kernel-latest.txt"
if [[ -n ${BENCH_RATIOS:-} ]]; then
    read -r m n p < <(python3 -c 'import json, statistics, sys
t = json.load(open(sys.argv[1]))
print(*(f"{statistics.median(t[k]) * 1000:.3f}" for k in ("envmod-modules", "envmod-none", "plain")))' "$OUT/times.json")
    bench_ratio "kernel start to first execute_reply, loads ${MODULE_LIST[*]}" "plain kernelspec" "$m" "$p"
    bench_ratio "kernel start to first execute_reply, no modules" "plain kernelspec" "$n" "$p"
fi
