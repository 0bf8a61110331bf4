#!/usr/bin/env bash
# Time what a course environment costs students, in one run.
#
#   bash benches/course.sh
#
# 1. First `import` of BENCH_PKGS packages in a fresh process by a student, from an
#    environment with compiled .pyc (the default) and one built with --no-compile, where the
#    student cannot write __pycache__ (read-only copy), so every start compiles again.
#    The compile cost at create time is reported beside it (create with and without).
#    Every package holds BENCH_SIZE modules of ~300 lines each, all imported, so the
#    environment has library-sized code to compile (20 x 10 x 300 = 60,000 lines by default).
#    The same two figures for a real library: numpy's wheel from PyPI (BENCH_WHEEL=FILE uses a
#    local wheel instead), repackaged as a conda package, `import numpy`.
# 2. BENCH_STUDENTS students at once: that many parallel `module load` + `python -c import`
#    processes on the course environment (Environment Modules, Tcl modulefile); the wall
#    time and its ratio to one student.
# 3. `envmod list` with BENCH_ENVS environments (half the user's, half in shared_envs_dirs).
#    Goal: under 100 ms.
# 4. `envmod doctor` on a clean account: a module system loaded, three environments, nothing
#    wrong. Goal: under 300 ms.
#
# Settings: BENCH_PYTHON=/usr/bin/python3.11, BENCH_PKGS=20, BENCH_SIZE=10, BENCH_RUNS=20,
# BENCH_STUDENTS=50, BENCH_ENVS=500, BENCH_ENVMOD=PATH (time this binary instead of a release build),
# BENCH_WHEEL=FILE (a cp311 wheel for the real-library figures; default: numpy from PyPI).
# Needs hyperfine (Debian apt), Environment Modules (tests/provision.sh installs it), and PyPI
# or BENCH_WHEEL.
# Results: target/bench-results/course-<timestamp>/ and target/bench-results/course-latest.txt.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
NPKGS=${BENCH_PKGS:-20}
SIZE=${BENCH_SIZE:-10}
RUNS=${BENCH_RUNS:-20}
STUDENTS=${BENCH_STUDENTS:-50}
NENVS=${BENCH_ENVS:-500}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results
BENCH_NAME=course
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
bench_need_hyperfine
MODINIT=/usr/share/modules/init/bash
[[ -r $MODINIT ]] || die "Environment Modules is missing: run tests/provision.sh (apt-get install environment-modules)"
bench_envmod BENCH_ENVMOD
ENVMOD=$BENCH_BUILT

T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-course-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON|RATTLER_)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
export HOME=$T/home XDG_CACHE_HOME=$T/home/.cache XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share
export ENVMOD_SITE_CONFIG=$T/site.yaml
mkdir -p "$HOME" "$T/course/envs" "$T/course/modules"
echo "shared_envs_dirs: [$T/course/envs]" > "$ENVMOD_SITE_CONFIG"
python3 "$REPO/benches/conda/make_packages.py" channel "$T/chan" "$NPKGS" "$SIZE"
"$ENVMOD" -q index "$T/chan"
SPECS=$(python3 -c "print(' '.join(f'pkg{i:03d}' for i in range($NPKGS)))")
IMPORTS=$(python3 -c "print(', '.join(f'pkg{i:03d}' for i in range($NPKGS)))")
COMMON="-c $T/chan --site-python $PY --module-system tcl --module-root $T/course/modules --shared"

step "fetching a real library"
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ -n ${BENCH_WHEEL:-} ]]; then
    WHEEL=$(realpath "$BENCH_WHEEL")
else
    mkdir -p "$TARGET_DIR/bench-cache"
    "$PY" -m pip download numpy --only-binary=:all: --no-deps -q -d "$TARGET_DIR/bench-cache" \
        --python-version "$PYVER" --implementation cp --platform manylinux2014_x86_64 >&2 ||
        die "could not download numpy from PyPI: set BENCH_WHEEL to a local cp${PYVER/./} wheel"
    WHEEL=$(ls -t "$TARGET_DIR"/bench-cache/numpy-*-cp"${PYVER/./}"-*.whl | head -1)
fi
LIB=$(basename "$WHEEL" | cut -d- -f1 | tr 'A-Z_' 'a-z-')
MODNAME=$(basename "$WHEEL" | cut -d- -f1)
python3 "$REPO/benches/conda/make_packages.py" from-wheel "$T/real" "$PYVER" "$WHEEL" >&2
"$ENVMOD" -q index "$T/real"
# --ignore-site-packages: the site Python may have its own build of the library (Debian's
# python3-numpy), which would otherwise count as installed and leave the environment without it.
REAL="-c $T/real --site-python $PY --module-system none --shared --ignore-site-packages $LIB"

step "creating the course environment, with and without .pyc"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/course-$stamp
mkdir -p "$OUT"
# shellcheck disable=SC2086
hyperfine --shell=none --warmup 2 --runs "$RUNS" --style basic --export-json "$OUT/create.json" \
    --command-name "create (compile .pyc)" --prepare "rm -rf $T/course/envs/c" "$ENVMOD create -q -p $T/course/envs/c $COMMON $SPECS" \
    --command-name "create --no-compile" --prepare "rm -rf $T/course/envs/n" "$ENVMOD create -q -p $T/course/envs/n $COMMON --no-compile $SPECS" >&2
# shellcheck disable=SC2086
hyperfine --shell=none --warmup 2 --runs "$RUNS" --style basic --export-json "$OUT/create-real.json" \
    --command-name "create (compile .pyc)" --prepare "rm -rf $T/real-c" "$ENVMOD create -q -p $T/real-c $REAL" \
    --command-name "create --no-compile" --prepare "rm -rf $T/real-n" "$ENVMOD create -q -p $T/real-n $REAL --no-compile" >&2
# The student's view: read-only, so no __pycache__ can be written. Root writes through a
# read-only tree, so Python is also told not to write bytecode.
chmod -R a-w "$T/course/envs/c" "$T/course/envs/n" "$T/real-c" "$T/real-n"
export PYTHONDONTWRITEBYTECODE=1
# No .pyc but the ones a package ships (numpy's wheel carries one).
shipped=$(python3 -c 'import sys, zipfile; print(sum(n.endswith(".pyc") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$WHEEL")
for e in "$T/course/envs/n:0" "$T/real-n:$shipped"; do
    nopyc=$(find "${e%:*}" -name '*.pyc' | wc -l)
    ((nopyc == ${e##*:})) || die "the --no-compile environment ${e%:*} has $nopyc .pyc files, not ${e##*:}"
done
where=$("$T/real-c/bin/python" -c "import $MODNAME; print($MODNAME.__file__)")
[[ $where == "$T/real-c/"* ]] || die "import $MODNAME came from $where, not from the environment"
step "1: first import in a fresh process, compiled vs not"
hyperfine --shell=none --warmup 2 --runs "$RUNS" --style basic --export-json "$OUT/import.json" \
    --command-name "import, .pyc compiled" "$T/course/envs/c/bin/python -c 'import $IMPORTS'" \
    --command-name "import, no .pyc" "$T/course/envs/n/bin/python -c 'import $IMPORTS'" >&2
hyperfine --shell=none --warmup 2 --runs "$RUNS" --style basic --export-json "$OUT/import-real.json" \
    --command-name "import, .pyc compiled" "$T/real-c/bin/python -c 'import $MODNAME'" \
    --command-name "import, no .pyc" "$T/real-n/bin/python -c 'import $MODNAME'" >&2

step "2: $STUDENTS students at once"
cat > "$T/student.sh" <<STUDENT
source $MODINIT
module use $T/course/modules
module load c/py3.11 || exit 9
python -c 'import $IMPORTS'
STUDENT
one_ms() { local s e; s=$(date +%s%N); bash "$T/student.sh"; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
many_ms() {
    local s e i
    s=$(date +%s%N)
    for ((i = 0; i < STUDENTS; i++)); do bash "$T/student.sh" & done
    wait
    e=$(date +%s%N)
    echo $(((e - s) / 1000000))
}
one=(); many=()
for _ in 1 2 3 4 5; do one+=("$(one_ms)"); many+=("$(many_ms)"); done

step "4: envmod doctor on a clean account"
for i in 1 2 3; do "$ENVMOD" -q create -p "$HOME/.envmod/envs/d$i" --site-python "$PY" --module-system tcl >/dev/null; done
(
    # shellcheck disable=SC1090
    source "$MODINIT"
    "$ENVMOD" doctor >&2 || die "doctor found problems on the clean account"
    hyperfine --shell=none --warmup 3 --runs "$RUNS" --style basic --export-json "$OUT/doctor.json" \
        --command-name "envmod doctor (clean, 3 envs)" "$ENVMOD doctor" >&2
)

step "3: envmod list with $NENVS environments"
half=$((NENVS / 2))
for ((i = 0; i < NENVS; i++)); do
    if ((i < half)); then p=$HOME/.envmod/envs/u$i; else p=$T/course/envs/s$i; fi
    "$ENVMOD" -q create -p "$p" --site-python "$PY" --module-system none >/dev/null 2>&1 || \
        "$ENVMOD" -q create -p "$p" --site-python "$PY" --module-system none
done
hyperfine --shell=none --warmup 3 --runs "$RUNS" --style basic --export-json "$OUT/list.json" \
    --command-name "envmod list ($NENVS envs)" "$ENVMOD list" >&2
count=$("$ENVMOD" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
((count >= NENVS)) || die "list showed $count of $NENVS environments"

lib_name=$(basename "$WHEEL" | cut -d- -f1)
bench_ratio_json "first import of $NPKGS packages, student cannot write __pycache__" "import, .pyc compiled" "no .pyc (--no-compile)" "import, no .pyc" "$OUT/import.json"
bench_ratio_json "first import $lib_name, student cannot write __pycache__" "import, .pyc compiled" "no .pyc (--no-compile)" "import, no .pyc" "$OUT/import-real.json"
if [[ -n ${BENCH_RATIOS:-} ]]; then
    bench_ratio "envmod list, $NENVS environments" "goal: 100 ms" "$(bench_median_ms "envmod list ($NENVS envs)" "$OUT/list.json")" 100
    bench_ratio "envmod doctor, clean account" "goal: 300 ms" "$(bench_median_ms "envmod doctor (clean, 3 envs)" "$OUT/doctor.json")" 300
fi

{
npy=$(find "$T/real-c" -name '*.py' | wc -l)
python3 - "$OUT" "$STUDENTS" "${one[*]}" "${many[*]}" "$NENVS" "$NPKGS" "$SIZE" "$(basename "$WHEEL")" "$npy" <<'PY'
import json, statistics, sys
out, students, one, many, nenvs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
print(f"environment: {sys.argv[6]} packages x {sys.argv[7]} modules of ~300 lines; real library: {sys.argv[8]} ({sys.argv[9]} .py files)")
def med(name):
    return {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(open(f"{out}/{name}"))["results"]}
c, i, l, d = med("create.json"), med("import.json"), med("list.json"), med("doctor.json")
def pyc(label, i, c):
    comp, plain = i["import, .pyc compiled"], i["import, no .pyc"]
    print(f"1. first import of {label}: {comp:.1f} ms with .pyc, {plain:.1f} ms without: ratio {comp / plain:.2f}x")
    print(f"   compile cost at create: {c['create (compile .pyc)']:.1f} ms vs {c['create --no-compile']:.1f} ms with --no-compile (+{c['create (compile .pyc)'] - c['create --no-compile']:.1f} ms)")
pyc("the packages", i, c)
pyc(sys.argv[8].split("-")[0] + " (real library)", med("import-real.json"), med("create-real.json"))
o = statistics.median(int(x) for x in one.split()); m = statistics.median(int(x) for x in many.split())
print(f"2. {students} students at once (module load + import): {m} ms wall vs {o} ms for one: {m / o:.1f}x (medians of 5)")
lt = list(l.values())[0]
print(f"3. envmod list with {nenvs} environments: {lt:.1f} ms (goal < 100 ms: {'met' if lt < 100 else 'missed'})")
dt = list(d.values())[0]
print(f"4. envmod doctor on a clean account (3 environments): {dt:.1f} ms (goal < 300 ms: {'met' if dt < 300 else 'missed'})")
PY
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); envmod: $("$ENVMOD" --version)"
echo "rerun: bash benches/course.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/course-latest.txt"
