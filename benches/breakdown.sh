#!/usr/bin/env bash
# Where the time of `envmod create` goes: the site-Python probe it runs versus its own work.
#
#   bash benches/breakdown.sh        # after bash benches/create.sh has installed hyperfine
#
# Times, with hyperfine and the same site Python (BENCH_PYTHON, default /usr/bin/python3.11):
#   - envmod create (lmod) as in benches/create.sh, with nothing cached (envmod's cache
#     directory removed before each run, so it asks the interpreter) and with the cache kept
#   - the same with --site-python pointing at a stub that prints the real probe's answer, so
#     no interpreter starts: what is left is envmod's own work (files, modulefile, fsyncs)
#   - the probe envmod runs (recorded by the stub the first time), alone
#   - bare interpreter start-up: `python -I -c pass`, `python -I -S -c pass`, `import json`
# BENCH_ENVMOD=PATH times that binary instead of a release build of this tree.
# Reports medians; exits 0 whatever the figures are.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${BENCH_PYTHON:-/usr/bin/python3.11}
RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-5}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RESULTS=$TARGET_DIR/bench-results

die() { echo "benches/breakdown.sh: error: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine is missing: run bash benches/create.sh first"
command -v python3 >/dev/null || die "python3 is needed to read the results"
[[ -x $PY ]] || die "site Python $PY not found"
if [[ -n ${BENCH_ENVMOD:-} ]]; then
    ENVMOD=$(realpath "$BENCH_ENVMOD") || die "BENCH_ENVMOD=$BENCH_ENVMOD not found"
else
    cargo build --release --locked --bin envmod >&2 || cargo build --release --bin envmod >&2 \
        || die "cargo build --release failed"
    ENVMOD=$TARGET_DIR/release/envmod
fi
[[ -x $ENVMOD ]] || die "no envmod binary at $ENVMOD"

T=$(mktemp -d "${TMPDIR:-/tmp}/envmod-breakdown.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(ENVMOD_|VIRTUAL_ENV|CONDA_|PYTHON)' || true)
unset LMOD_CMD MODULES_CMD LOADEDMODULES _LMFILES_ MODULEPATH 2>/dev/null || true
mkdir -p "$T/home" "$T/xdg-config" "$T/xdg-data" "$T/xdg-cache" "$T/modules" "$T/p"
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg-config XDG_DATA_HOME=$T/xdg-data XDG_CACHE_HOME=$T/xdg-cache
export ENVMOD_SITE_CONFIG=$T/none.yaml ENVMOD_MODULE_ROOT=$T/modules ENVMOD_ENVS_DIR=$T/envs
# Removing these before a run makes envmod ask the interpreter, whether or not this build
# keeps what it learnt about interpreters.
NOCACHE="$T/xdg-cache/envmod $T/home/.cache/envmod"

# A stub interpreter: the first time, it runs the real one with the arguments envmod gives
# (recording them and the answer); after that it only prints the recorded answer.
cat >"$T/stub-python" <<EOF
#!/bin/sh
if [ -f "$T/answer" ]; then exec cat "$T/answer"; fi
printf '%s\\0' "\$@" >"$T/probe-args"
"$PY" "\$@" >"$T/answer.tmp" || exit \$?
mv "$T/answer.tmp" "$T/answer"
exec cat "$T/answer"
EOF
chmod +x "$T/stub-python"
"$ENVMOD" create -q -p "$T/p/first" --site-python "$T/stub-python" --module-system none >&2 \
    || die "envmod create failed with the stub interpreter"
[[ -s $T/answer && -f $T/probe-args ]] || die "envmod did not run the interpreter (was a cache used?)"
rm -rf "$T/p/first" "$T/xdg-cache/envmod" "$T/home/.cache/envmod"
# The probe exactly as envmod sends it, quoted for hyperfine.
mapfile -d '' probe_args <"$T/probe-args"
PROBE_CMD=$PY
for a in "${probe_args[@]}"; do
    [[ $a != *"'"* ]] || die "envmod's probe contains a single quote; cannot pass it to hyperfine"
    PROBE_CMD+=" '$a'"
done

mkdir -p "$RESULTS"
JSON=$RESULTS/breakdown-latest.json
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --export-json "$JSON" --style basic \
    -n "envmod create (lmod), nothing cached" -p "rm -rf $T/p/real $T/modules/real $NOCACHE" \
    "$ENVMOD create -p $T/p/real --site-python $PY --module-system lmod" \
    -n "envmod create (lmod), cache kept" -p "rm -rf $T/p/warm $T/modules/warm" \
    "$ENVMOD create -p $T/p/warm --site-python $PY --module-system lmod" \
    -n "envmod create (lmod), stub interpreter" -p "rm -rf $T/p/stub $T/modules/stub $NOCACHE" \
    "$ENVMOD create -p $T/p/stub --site-python $T/stub-python --module-system lmod" \
    -n "envmod create (none), stub interpreter" -p "rm -rf $T/p/stubnone $NOCACHE" \
    "$ENVMOD create -p $T/p/stubnone --site-python $T/stub-python --module-system none" \
    -n "stub interpreter alone" -p "true" "$T/stub-python" \
    -n "envmod's probe alone" -p "true" "$PROBE_CMD" \
    -n "python -I -c 'import json'" -p "true" "$PY -I -c 'import json'" \
    -n "python -I -c pass" -p "true" "$PY -I -c pass" \
    -n "python -I -S -c pass" -p "true" "$PY -I -S -c pass" \
    -n "python -m venv" -p "rm -rf $T/venv" "$PY -m venv --system-site-packages --without-pip $T/venv" \
    >&2

python3 - "$JSON" <<'EOF'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
w = max(len(r["command"]) for r in rs)
print(f'{"command".ljust(w)}  median ms  user ms  sys ms')
for r in rs:
    print(f'{r["command"].ljust(w)}  {r["median"]*1000:9.1f}  {r["user"]*1000:7.1f}  {r["system"]*1000:6.1f}')
EOF
echo "site python: $PY; envmod $ENVMOD; $RUNS runs, $WARMUP warmup; nproc=$(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rerun: bash benches/breakdown.sh"
