#!/usr/bin/env bash
# Time `. bin/activate && deactivate` of an envmod environment against the same for a
# `python -m venv` environment on the same site Python, in bash, dash and zsh, in one run.
#
#   bash benches/activate.sh
#
# Both environments have no module recorded (created in a shell without a module system), so
# the figures are the scripts' own work. For each shell (hyperfine --shell=none, every command
# an explicit `SHELL -c '...'` under env -i: no rc files, no caller's variables):
#   new shell   SHELL -c '. ENV/bin/activate && deactivate': what one activation in a new shell
#               costs, the shell's start included
#   per source  SHELL -c 'LOOP { . ENV/bin/activate && deactivate }' with BENCH_LOOPS
#               iterations, minus the same loop with `:` in its place, divided by BENCH_LOOPS:
#               the script alone
# Each command runs once first: python must come from the environment after `.`, and PATH
# must be back to what it was after `deactivate`.
#
# Settings (environment variables):
#   BENCH_PYTHON=/usr/bin/python3.11   site Python of both environments
#   BENCH_RUNS=20                      timed runs per command (at least 3)
#   BENCH_WARMUP=3                     untimed warmup runs per command
#   BENCH_LOOPS=200                    activations per run in "per source"
#   BENCH_SHELLS="bash dash zsh"       shells to time (those missing are skipped, and said so)
#   BENCH_ENVMOD=PATH                  time this envmod binary instead of building one
#   BENCH_RATIOS=FILE                  append the ratios to FILE (see benches/lib.sh)
#
# Installs what it lacks: hyperfine (Debian apt), a release build of envmod.
# Results: target/bench-results/activate-<timestamp>/ and target/bench-results/activate-latest.txt.
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BENCH_NAME=activate
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
cd "$REPO"

PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-3}
LOOPS=${BENCH_LOOPS:-200}
SHELLS=${BENCH_SHELLS:-bash dash zsh}
RESULTS=$TARGET_DIR/bench-results

if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 3)); then die "BENCH_RUNS must be a number >= 3 (got '$RUNS')"; fi
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number (got '$WARMUP')"
if ! [[ $LOOPS =~ ^[0-9]+$ ]] || ((LOOPS < 1)); then die "BENCH_LOOPS must be a number >= 1 (got '$LOOPS')"; fi
[[ -x $PY ]] || die "site Python $PY not found or not executable (set BENCH_PYTHON=...)"
"$PY" -I -c 'import venv' 2>/dev/null || die "$PY has no venv module (on Debian: apt-get install python3-venv)"
shell_list=()
for s in $SHELLS; do
    case $s in bash | dash | zsh) ;; *) die "BENCH_SHELLS: '$s' is not bash, dash or zsh" ;; esac
    if command -v "$s" >/dev/null; then shell_list+=("$(command -v "$s")"); else
        echo "benches/activate.sh: $s is not installed (apt-get install $s): not timed" >&2
    fi
done
((${#shell_list[@]} > 0)) || die "none of the shells ($SHELLS) is installed"
bench_need_hyperfine
bench_envmod BENCH_ENVMOD

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/envmod-activate-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
[[ $T != *[[:space:]]* && $T != *"'"* ]] || die "scratch path must not contain spaces or quotes: $T"
mkdir -p "$T/bin" "$T/home"
cp "$BENCH_BUILT" "$T/bin/envmod"
CLEAN=(env -i PATH=/usr/bin:/bin HOME="$T/home" LANG=C.UTF-8 ENVMOD_SITE_CONFIG="$T/none.yaml"
    XDG_CONFIG_HOME="$T/home/.config" XDG_DATA_HOME="$T/home/.local/share" XDG_CACHE_HOME="$T/home/.cache")

step "creating an envmod environment and a venv on $PY"
"${CLEAN[@]}" "$T/bin/envmod" -q create -p "$T/envmod" --site-python "$PY" --module-system none \
    || die "envmod create failed"
[[ -f $T/envmod/bin/activate ]] || die "envmod create wrote no bin/activate"
"${CLEAN[@]}" "$PY" -m venv --without-pip "$T/venv" || die "$PY -m venv failed"

# A POSIX loop, the same in the three shells.
loop() { echo "i=0; while [ \$i -lt $LOOPS ]; do $1; i=\$((i + 1)); done"; }

step "checking each script once in each shell"
for sh in "${shell_list[@]}"; do
    for e in envmod venv; do
        # shellcheck disable=SC2016
        out=$("${CLEAN[@]}" "$sh" -c '. "$1/bin/activate" && command -v python && deactivate && echo "$PATH"' check "$T/$e" 2>&1) \
            || die "$(basename "$sh"): . $e/bin/activate && deactivate failed: $out"
        [[ $out == "$T/$e/bin/python"$'\n'/usr/bin:/bin ]] \
            || die "$(basename "$sh"): $e: python not from the environment, or PATH not restored: $out"
    done
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/activate-$stamp
mkdir -p "$OUT"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for sh in "${shell_list[@]}"; do
    s=$(basename "$sh")
    step "$s: $RUNS runs each after $WARMUP warmup runs ($LOOPS activations per run in the loops)"
    "${CLEAN[@]}" "$(command -v hyperfine)" --shell=none --warmup "$WARMUP" --runs "$RUNS" \
        --style basic --export-json "$OUT/$s.json" \
        --command-name "envmod, new shell" "$sh -c '. $T/envmod/bin/activate && deactivate'" \
        --command-name "venv, new shell" "$sh -c '. $T/venv/bin/activate && deactivate'" \
        --command-name "envmod, loop" "$sh -c '$(loop ". $T/envmod/bin/activate && deactivate")'" \
        --command-name "venv, loop" "$sh -c '$(loop ". $T/venv/bin/activate && deactivate")'" \
        --command-name "empty loop" "$sh -c '$(loop ":")'" >&2
done

# --- report -----------------------------------------------------------------------------------
{
printf '%-6s  %-10s  %10s  %10s  %7s\n' shell measure "envmod ms" "venv ms" ratio
for sh in "${shell_list[@]}"; do
    s=$(basename "$sh")
    j=$OUT/$s.json
    en=$(bench_median_ms "envmod, new shell" "$j")
    vn=$(bench_median_ms "venv, new shell" "$j")
    el=$(bench_median_ms "envmod, loop" "$j")
    vl=$(bench_median_ms "venv, loop" "$j")
    base=$(bench_median_ms "empty loop" "$j")
    ep=$(awk -v a="$el" -v b="$base" -v n="$LOOPS" 'BEGIN { printf "%.3f", (a - b) / n }')
    vp=$(awk -v a="$vl" -v b="$base" -v n="$LOOPS" 'BEGIN { printf "%.3f", (a - b) / n }')
    awk -v s="$s" -v a="$en" -v b="$vn" 'BEGIN { printf "%-6s  %-10s  %10.2f  %10.2f  %6.2fx\n", s, "new shell", a, b, a / b }'
    awk -v s="$s" -v a="$ep" -v b="$vp" 'BEGIN { printf "%-6s  %-10s  %10.3f  %10.3f  %6.2fx\n", s, "per source", a, b, (b > 0 ? a / b : 0) }'
    bench_ratio "$s: . activate && deactivate, new shell" "python -m venv" "$en" "$vn"
    bench_ratio "$s: . activate && deactivate, per source" "python -m venv" "$ep" "$vp"
done
echo
echo "new shell: SHELL -c '. ENV/bin/activate && deactivate', the shell's start included"
echo "per source: a loop of $LOOPS in one shell, minus the empty loop, divided by $LOOPS"
echo "machine: $(nproc) cores, load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "site python: $PY; envmod: $("$T/bin/envmod" --version), $BENCH_SOURCE"
echo "hyperfine: $(hyperfine --version); $RUNS runs after $WARMUP warmup, --shell=none, under env -i; medians"
echo "results: $OUT"
echo "rerun: bash benches/activate.sh"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$RESULTS/activate-latest.txt"
