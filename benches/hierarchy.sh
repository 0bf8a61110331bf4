#!/usr/bin/env bash
# Time what loading the recorded module stack from scratch costs: `envmod create` with four
# modules of a hierarchical tree loaded, on an envmod that does not load the stack again
# (BEFORE) and on one that does (AFTER), and `envmod doctor` with 20 such environments.
#
#   BENCH_BEFORE=/path/to/old/envmod bash benches/hierarchy.sh
#
# 1. A tree as hierarchical sites build it, for each module system (Lua modulefiles for Lmod,
#    Tcl ones for Environment Modules): Core/ holds StdEnv/2024 (sticky), gcc/12.2, gcc/13.1,
#    python/3.11 and intel/oneapi/2023.1; gcc adds Compiler/gcc/V (openmpi/4.1) to MODULEPATH,
#    openmpi adds MPI/gcc/V/openmpi/4.1 (hdf5/1.14 under gcc/12.2 only, py-mpi4py/3.1).
# 2. For each module system, a clean bash (env -i, a private HOME and XDG dirs, no module
#    variables of the caller) sources the system's init script, sets MODULEPATH to Core, loads
#    StdEnv/2024 as a login does, then BENCH_STACK. In that shell:
#      create   `envmod create -p DIR/env --site-python PY` (no packages) with BEFORE and AFTER,
#               BENCH_ROUNDS rounds of one hyperfine run with BENCH_BATCH runs of each, the
#               order of the two alternating from round to round; each has its own HOME
#      doctor   `envmod doctor` (AFTER) with 0 environments and with BENCH_ENVS environments
#               created with that stack (goal < 1 s: each distinct stack is loaded once),
#               rounds as above
#      parts    what one load from scratch runs, alone: `module purge` and `module load STACK`
#               as envmod's scratch /bin/sh runs them (`$CMD sh purge`, `$CMD sh load ...`,
#               eval'd), `$CMD sh purge` alone, `$CMD sh --version` (starting the module command),
#               and the site Python's start (`PY -I -c pass`)
#    Each command runs once first and must succeed (doctor must find nothing to report).
#
# Settings (environment variables):
#   BENCH_BEFORE=PATH             envmod without the stack replay (a release build of an older
#                                 commit); unset: the before arm is skipped, and said so
#   BENCH_AFTER=PATH              envmod with it; unset: `cargo build --release` of this tree
#   BENCH_PYTHON=/usr/bin/python3.11   --site-python of every create
#   BENCH_STACK="gcc/12.2 openmpi/4.1 hdf5/1.14 python/3.11"   what is loaded after StdEnv
#   BENCH_ENVS=20                 environments doctor checks
#   BENCH_ROUNDS=15               rounds of create and of doctor (at least 5)
#   BENCH_BATCH=2                 hyperfine runs of each arm per round (runs = ROUNDS x BATCH)
#   BENCH_SYSTEMS="lmod tcl"      module systems to time (tcl: Environment Modules)
#   BENCH_LMOD_INIT, BENCH_MODULES_INIT   the init scripts for bash; default: as the tests
#                                 find them, ENVMOD_TEST_LMOD_INIT / ENVMOD_TEST_MODULES_INIT,
#                                 else ${ENVMOD_TEST_TOOLS:-<repo>/.test-tools}/env.sh written
#                                 by tests/provision.sh
#   BENCH_TMPDIR=${TMPDIR:-/tmp}  where the scratch directory goes
#
# Installs what it lacks: hyperfine (Debian apt). A missing module system or binary stops the
# script with an error; a missed goal does not change the exit status.
#
# Results: target/bench-results/hierarchy-<timestamp>/ (hyperfine's JSON exports, report.txt)
# and target/bench-results/hierarchy-latest.txt.
set -euo pipefail

usage() { sed -n '2,47p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PY=${BENCH_PYTHON:-/usr/bin/python3.11}
STACK=${BENCH_STACK:-gcc/12.2 openmpi/4.1 hdf5/1.14 python/3.11}
NENVS=${BENCH_ENVS:-20}
ROUNDS=${BENCH_ROUNDS:-15}
BATCH=${BENCH_BATCH:-2}
SYSTEMS=${BENCH_SYSTEMS:-lmod tcl}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results

BENCH_NAME=hierarchy
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 5)); then die "BENCH_ROUNDS must be a number >= 5 (got '$ROUNDS')"; fi
if ! [[ $BATCH =~ ^[0-9]+$ ]] || ((BATCH < 1)); then die "BENCH_BATCH must be a number >= 1 (got '$BATCH')"; fi
if ! [[ $NENVS =~ ^[0-9]+$ ]] || ((NENVS < 1)); then die "BENCH_ENVS must be a number >= 1 (got '$NENVS')"; fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
command -v python3 >/dev/null || die "python3 is needed to read the results"
read -ra STACK_LIST <<<"$STACK"
((${#STACK_LIST[@]} > 0)) || die "BENCH_STACK is empty"
for m in "${STACK_LIST[@]}"; do
    [[ $m =~ ^[A-Za-z0-9][A-Za-z0-9._+/-]*$ ]] || die "BENCH_STACK: '$m' is not a module name"
done
read -ra SYSTEM_LIST <<<"$SYSTEMS"
for ms in "${SYSTEM_LIST[@]}"; do
    [[ $ms == lmod || $ms == tcl ]] || die "BENCH_SYSTEMS: '$ms' is neither lmod nor tcl"
done

# --- hyperfine ------------------------------------------------------------------------------
bench_need_hyperfine
HYPERFINE=$(command -v hyperfine)

# --- the module systems' init scripts, found as the tests find them ---------------------------
tools_env=${ENVMOD_TEST_TOOLS:-$REPO/.test-tools}/env.sh
if [[ -z ${BENCH_LMOD_INIT:-${ENVMOD_TEST_LMOD_INIT:-}} || -z ${BENCH_MODULES_INIT:-${ENVMOD_TEST_MODULES_INIT:-}} ]] \
    && [[ -r $tools_env ]]; then
    # shellcheck disable=SC1090
    source "$tools_env"
fi
LMOD_INIT=${BENCH_LMOD_INIT:-${ENVMOD_TEST_LMOD_INIT:-}}
MODULES_INIT=${BENCH_MODULES_INIT:-${ENVMOD_TEST_MODULES_INIT:-}}
for ms in "${SYSTEM_LIST[@]}"; do
    if [[ $ms == lmod ]]; then init=$LMOD_INIT var=BENCH_LMOD_INIT; else init=$MODULES_INIT var=BENCH_MODULES_INIT; fi
    [[ -n $init && -r $init ]] \
        || die "no init script for $ms ('$init'): run tests/provision.sh (or set ENVMOD_TEST_TOOLS to where it put them), or set $var"
done

# --- the two envmod binaries ------------------------------------------------------------------
bench_envmod BENCH_AFTER
after_built=$BENCH_BUILT
after_source=$BENCH_SOURCE
[[ -x $after_built ]] || die "no envmod binary at $after_built"
before_built=
if [[ -n ${BENCH_BEFORE:-} ]]; then
    before_built=$(realpath "$BENCH_BEFORE") || die "BENCH_BEFORE=$BENCH_BEFORE not found"
    [[ -x $before_built ]] || die "BENCH_BEFORE=$BENCH_BEFORE is not executable"
    before_source="given by BENCH_BEFORE ($before_built)"
else
    before_source="none"
    echo "benches/hierarchy.sh: BENCH_BEFORE is not set: create is timed with the AFTER binary only, and no before/after ratio is reported." >&2
    echo "  To compare, build an envmod without the replay and pass it, e.g.:" >&2
    echo "    git worktree add --detach ../envmod-before 8f91a1d && (cd ../envmod-before && cargo build --release)" >&2
    echo "    BENCH_BEFORE=../envmod-before/target/release/envmod bash benches/hierarchy.sh" >&2
fi

# --- an isolated scratch directory ------------------------------------------------------------
T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-hierarchy-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* ]] || die "scratch path must not contain spaces: $T"
mkdir -p "$T/bin"
# Copies, so a rebuild during the run cannot change what is timed.
cp "$after_built" "$T/bin/envmod-after"
if [[ -n $before_built ]]; then cp "$before_built" "$T/bin/envmod-before"; fi

# --- the trees --------------------------------------------------------------------------------
# modfile MS ROOT PATH FAMILY STICKY [set K V | prepend K V]...
modfile() {
    local ms=$1 root=$2 path=$3 family=$4 sticky=$5 name file text
    shift 5
    name=${path#*/}
    if [[ $ms == lmod ]]; then
        file=$root/$path.lua
        text="whatis(\"$name (site test tree)\")"$'\n'
        [[ -z $family ]] || text+="family(\"$family\")"$'\n'
    else
        file=$root/$path
        text="#%Module1.0"$'\n'"module-whatis {$name (site test tree)}"$'\n'
        [[ -z $family ]] || text+="family $family"$'\n'
    fi
    while (($#)); do
        case $1:$ms in
            set:lmod) text+="setenv(\"$2\", \"$3\")"$'\n' ;;
            prepend:lmod) text+="prepend_path(\"$2\", \"$3\")"$'\n' ;;
            set:tcl) text+="setenv $2 {$3}"$'\n' ;;
            prepend:tcl) text+="prepend-path $2 {$3}"$'\n' ;;
        esac
        shift 3
    done
    if [[ $sticky == sticky && $ms == lmod ]]; then text+='add_property("lmod", "sticky")'$'\n'; fi
    mkdir -p "$(dirname "$file")"
    printf '%s' "$text" >"$file"
}
write_tree() { # MS ROOT
    local ms=$1 root=$2 gcc
    # python/3.11's own install: a copy of the site Python with the standard library beside it.
    mkdir -p "$root/_python/bin" "$root/_python/lib"
    cp "$PY" "$root/_python/bin/python3.11"
    ln -s python3.11 "$root/_python/bin/python3"
    ln -s python3.11 "$root/_python/bin/python"
    ln -s /usr/lib/python3.11 "$root/_python/lib/python3.11"
    ln -s /usr/lib/python3 "$root/_python/lib/python3"
    modfile "$ms" "$root" Core/StdEnv/2024 "" sticky set SITE_STDENV 2024
    modfile "$ms" "$root" Core/python/3.11 "" "" prepend PATH "$root/_python/bin"
    for gcc in 12.2 13.1; do
        modfile "$ms" "$root" "Core/gcc/$gcc" compiler "" set FAKE_GCC_VERSION "$gcc" \
            prepend MODULEPATH "$root/Compiler/gcc/$gcc"
        modfile "$ms" "$root" "Compiler/gcc/$gcc/openmpi/4.1" mpi "" set FAKE_MPI_VERSION 4.1 \
            set FAKE_MPI_COMPILER "gcc-$gcc" prepend MODULEPATH "$root/MPI/gcc/$gcc/openmpi/4.1"
        modfile "$ms" "$root" "MPI/gcc/$gcc/openmpi/4.1/py-mpi4py/3.1" "" "" \
            prepend PYTHONPATH "/opt/site/gcc-$gcc/py-mpi4py/3.1/lib/python3.11/site-packages"
    done
    modfile "$ms" "$root" MPI/gcc/12.2/openmpi/4.1/hdf5/1.14 "" "" set HDF5_DIR /opt/site/gcc-12.2/hdf5/1.14
    modfile "$ms" "$root" Core/intel/oneapi/2023.1 "" "" set INTEL_ONEAPI_VERSION 2023.1
    if [[ $ms == tcl ]]; then printf '#%%Module1.0\nmodule-tag sticky StdEnv/2024\n' >"$root/Core/.modulerc"; fi
}

# --- what runs in each module system's clean shell ----------------------------------------------
# Runs under `env -i` with: MS INIT T OUT ROUNDS BATCH NENVS PY HYPERFINE STACK...
in_module_shell() {
    set -euo pipefail
    local ms=$1 init=$2 T=$3 out=$4 rounds=$5 batch=$6 nenvs=$7 py=$8 hf=$9
    shift 9
    local stack=("$@") tree=$T/trees/$ms
    die() { echo "benches/hierarchy.sh ($ms): error: $*" >&2; exit 1; }
    # shellcheck disable=SC1090
    source "$init"
    export MODULEPATH=$tree/Core
    module load StdEnv/2024 || die "module load StdEnv/2024 failed"
    module load "${stack[@]}" || die "module load ${stack[*]} failed"
    local m
    for m in StdEnv/2024 "${stack[@]}"; do
        [[ :$LOADEDMODULES: == *:$m:* ]] || die "$m is not in LOADEDMODULES after module load: $LOADEDMODULES"
    done
    local cmd=${LMOD_CMD:-${MODULES_CMD:-}}
    [[ -n $cmd ]] || die "neither LMOD_CMD nor MODULES_CMD is set after sourcing $init"
    local arms=(after) arm c
    [[ ! -x $T/bin/envmod-before ]] || arms=(before after)

    # Each arm and each doctor case has a HOME of its own.
    home() { echo "env HOME=$T/h-$1 XDG_CONFIG_HOME=$T/h-$1/.config XDG_DATA_HOME=$T/h-$1/.local/share XDG_CACHE_HOME=$T/h-$1/.cache"; }
    for arm in "${arms[@]}" doctor0 doctorN; do mkdir -p "$T/h-$arm" "$T/p-$arm"; done
    create_cmd() { echo "$(home "$1") $T/bin/envmod-$1 create -p $T/p-$1/env --site-python $py"; }
    prepare() { echo "rm -rf $T/p-$1/env $T/h-$1/.envmod $T/h-$1/.local/share/envmod"; }

    # The commands are word lists on purpose (no spaces in $T, checked above).
    # shellcheck disable=SC2086
    for arm in "${arms[@]}"; do
        c=$(create_cmd "$arm")
        $c >"$out/check-create-$arm.txt" 2>&1 \
            || die "$arm: envmod create failed: $(cat "$out/check-create-$arm.txt")"
        [[ -f $T/p-$arm/env/pyvenv.cfg ]] || die "$arm: envmod create left no pyvenv.cfg"
        grep -rqs hdf5/1.14 "$T/p-$arm/env" "$T/h-$arm" \
            || die "$arm: the environment does not record hdf5/1.14"
        eval "$(prepare "$arm")"
    done

    for ((i = 0; i < nenvs; i++)); do
        # shellcheck disable=SC2046
        $(home doctorN) "$T/bin/envmod-after" -q create -n "hier$i" --site-python "$py" \
            >"$out/check-doctor-create.txt" 2>&1 \
            || die "envmod create -n hier$i failed: $(cat "$out/check-doctor-create.txt")"
    done
    local doctor0 doctorN
    doctor0="$(home doctor0) $T/bin/envmod-after doctor"
    doctorN="$(home doctorN) $T/bin/envmod-after doctor"
    $doctor0 >"$out/check-doctor0.txt" 2>&1 || die "envmod doctor (no environments) failed: $(cat "$out/check-doctor0.txt")"
    $doctorN >"$out/check-doctorN.txt" 2>&1 || die "envmod doctor ($nenvs environments) failed: $(cat "$out/check-doctorN.txt")"
    for c in doctor0 doctorN; do
        grep -q "no problems found" "$out/check-$c.txt" \
            || die "envmod doctor ($c) reports problems, so it does not time a clean check: $(cat "$out/check-$c.txt")"
    done
    # shellcheck disable=SC2046
    $(home doctorN) "$T/bin/envmod-after" list >"$out/check-list.txt" 2>&1 || true
    (($(grep -c hier "$out/check-list.txt") >= nenvs)) || die "envmod list does not show the $nenvs environments: $(cat "$out/check-list.txt")"

    # One load from scratch, as envmod's scratch shell runs it (the path where all load at once).
    cat >"$T/replay.sh" <<'EOF'
cmd=$1; shift
eval "$("$cmd" sh purge 2>/dev/null)" >/dev/null 2>&1
code=$("$cmd" sh load "$@" 2>/dev/null) && eval "$code" >/dev/null 2>&1 || exit 1
case ":$LOADEDMODULES:" in *":$1:"*) ;; *) exit 1 ;; esac
env -0 >/dev/null
EOF
    /bin/sh "$T/replay.sh" "$cmd" "${stack[@]}" || die "the scratch-shell load of ${stack[*]} failed"

    local r order
    for ((r = 0; r < rounds; r++)); do
        if ((r % 2 == 0)); then order=("${arms[@]}"); else order=(); for ((k = ${#arms[@]} - 1; k >= 0; k--)); do order+=("${arms[k]}"); done; fi
        local args=()
        for arm in "${order[@]}"; do
            args+=(--command-name "create ($arm)" --prepare "$(prepare "$arm")" "$(create_cmd "$arm")")
        done
        "$hf" --shell=none --warmup $((r == 0 ? 2 : 0)) --runs "$batch" --style none \
            --export-json "$out/create-$r.json" "${args[@]}" >&2
        if ((r % 2 == 0)); then order=(0 N); else order=(N 0); fi
        args=()
        for arm in "${order[@]}"; do
            if [[ $arm == 0 ]]; then args+=(--command-name "doctor (0 envs)" "$doctor0")
            else args+=(--command-name "doctor ($nenvs envs)" "$doctorN"); fi
        done
        "$hf" --shell=none --warmup $((r == 0 ? 2 : 0)) --runs "$batch" --style none \
            --export-json "$out/doctor-$r.json" "${args[@]}" >&2
        echo "    $ms: round $((r + 1))/$rounds done ($(cut -d' ' -f1 /proc/loadavg) load)" >&2
    done
    "$hf" --shell=none --warmup 2 --runs $((rounds * batch)) --style none --export-json "$out/parts.json" \
        --command-name "module purge + module load (scratch sh)" "/bin/sh $T/replay.sh $cmd ${stack[*]}" \
        --command-name "module purge alone" "$cmd sh purge" \
        --command-name "module command start" "$cmd sh --version" \
        --command-name "site Python start" "$py -I -c pass" >&2
    echo "$cmd" >"$out/cmd.txt"
    module --version >"$out/version.txt" 2>&1 || true
}

mkdir -p "$RESULTS"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/hierarchy-$stamp
mkdir -p "$OUT"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for ms in "${SYSTEM_LIST[@]}"; do
    if [[ $ms == lmod ]]; then init=$LMOD_INIT; else init=$MODULES_INIT; fi
    write_tree "$ms" "$T/trees/$ms"
    rm -rf "$T/h-"* "$T/p-"*
    mkdir -p "$OUT/$ms"
    step "$ms: $ROUNDS rounds of create and doctor, $BATCH runs each per round"
    # Nothing from the caller's shell, its config or its loaded modules reaches the timed runs.
    env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$T/h-none" USER="${USER:-$(id -un)}" \
        ENVMOD_SITE_CONFIG="$T/none.yaml" \
        bash --norc --noprofile -c "$(declare -f in_module_shell); in_module_shell \"\$@\"" in_module_shell \
        "$ms" "$init" "$T" "$OUT/$ms" "$ROUNDS" "$BATCH" "$NENVS" "$PY" "$HYPERFINE" "${STACK_LIST[@]}" \
        || die "$ms: the timed shell failed"
done

for ms in "${SYSTEM_LIST[@]}"; do
    if [[ -n $before_built ]]; then
        bench_ratio_json "$ms: create with the stack loaded, loading it from scratch" "create (after)" \
            "envmod without the reload (BENCH_BEFORE)" "create (before)" "$OUT/$ms"/create-*.json
    fi
    if [[ -n ${BENCH_RATIOS:-} ]]; then
        bench_ratio "$ms: doctor with $NENVS environments of the stack" "goal: 1 s" \
            "$(bench_median_ms "doctor ($NENVS envs)" "$OUT/$ms"/doctor-*.json)" 1000
    fi
done

# --- report -----------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
fs_type=$(df --output=fstype "$T" 2>/dev/null | tail -n 1 || echo unknown)
{
python3 - "$OUT" "$NENVS" "${SYSTEM_LIST[@]}" <<'EOF'
import glob, json, os, statistics, sys
out, nenvs, systems = sys.argv[1], sys.argv[2], sys.argv[3:]
NAMES = {"lmod": "Lmod", "tcl": "Environment Modules"}

def times(files):
    t = {}
    for f in files:
        for r in json.load(open(f))["results"]:
            t.setdefault(r["command"], []).extend(x * 1000 for x in r["times"])
    return t

def med(xs):
    return statistics.median(xs) if xs else None

def f(x):
    return "-" if x is None else f"{x:.0f}"

rows = [("module system", "create before ms", "create after ms", "after - before ms", "after/before",
         "per-round ratio",
         "doctor 0 envs ms", f"doctor {nenvs} envs ms", "goal < 1 s")]
parts = [("module system", "module command", "purge + load (scratch sh) ms", "purge alone ms",
          "load (difference) ms", "command start ms", "site Python start ms")]
for ms in systems:
    c = times(sorted(glob.glob(f"{out}/{ms}/create-*.json")))
    d = times(sorted(glob.glob(f"{out}/{ms}/doctor-*.json")))
    p = times([f"{out}/{ms}/parts.json"])
    b, a = med(c.get("create (before)", [])), med(c["create (after)"])
    d0, dn = med(d["doctor (0 envs)"]), med(d[f"doctor ({nenvs} envs)"])
    # Each round's ratio of medians: the two arms of a round ran minutes apart at most.
    rounds = [times([x]) for x in sorted(glob.glob(f"{out}/{ms}/create-*.json"))]
    per_round = [med(r["create (after)"]) / med(r["create (before)"]) for r in rounds if "create (before)" in r]
    rows.append((NAMES[ms], f(b), f(a), "-" if b is None else f(a - b),
                 "-" if b is None else f"{a / b:.2f}x",
                 f"{med(per_round):.2f}x" if per_round else "-", f(d0), f(dn),
                 "MET" if dn < 1000 else "NOT MET"))
    cmd = open(f"{out}/{ms}/cmd.txt").read().strip()
    both, purge = med(p["module purge + module load (scratch sh)"]), med(p["module purge alone"])
    parts.append((NAMES[ms], os.path.basename(cmd), f(both), f(purge), f(both - purge),
                  f(med(p["module command start"])), f(med(p["site Python start"]))))
    n = len(c["create (after)"])
for table in (rows, parts):
    w = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for i, r in enumerate(table):
        print("  ".join(x.ljust(w[0]) if j == 0 else x.rjust(w[j]) for j, x in enumerate(r)))
        if i == 0:
            print("  ".join("-" * x for x in w))
    print()
print(f"medians of {n} runs per arm (hyperfine --shell=none; create's two arms alternate which goes first, round after round)")
EOF
echo "stack: StdEnv/2024 (sticky, loaded first) $STACK; create: envmod create -p DIR/env --site-python $PY"
for ms in "${SYSTEM_LIST[@]}"; do echo "$ms: $(grep -m1 -E 'Modules Release|Version' "$OUT/$ms/version.txt" | sed 's/^ *//') ($(cat "$OUT/$ms/cmd.txt"))"; done
echo "machine: $(nproc) cores ($cpu), load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg), scratch filesystem $fs_type"
echo "envmod before: $before_source"
echo "envmod after: $("$T/bin/envmod-after" --version), $after_source"
echo "hyperfine: $(hyperfine --version); $ROUNDS rounds x $BATCH runs per arm"
echo "results: $OUT"
echo "rerun: BENCH_BEFORE=PATH bash benches/hierarchy.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/hierarchy-latest.txt"
