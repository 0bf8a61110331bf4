#!/usr/bin/env bash
# Run every benchmark, print one table of envmod's ratios against each peer, and rewrite the
# marked blocks of docs/performance.md with it.
#
#   bash benches/all.sh                              # everything, at each script's full settings
#   BENCH_BEFORE_COMMIT=8f91a1d bash benches/all.sh  # hierarchy.sh's before/after ratio too
#   BENCH_QUICK=1 bash benches/all.sh                # smallest settings: checks that all run
#
# Builds envmod once (cargo build --release) and gives every script that binary
# (BENCH_ENVMOD, and BENCH_AFTER for hierarchy.sh). Each script appends its ratios to one file
# (BENCH_RATIOS, the convention in benches/lib.sh); a script that fails is named in the table
# with its log, and all.sh exits 1 after the others have run.
#
# docs/performance.md: the block between `<!-- all.sh: begin -->` and `<!-- all.sh: end -->`
# gets the whole table, under a line with the date, the commit (`git rev-parse --short HEAD`,
# "+ changes" when the tree differs from it) and the load average at the start and the end;
# a block between `<!-- all.sh: NAME begin -->` and `<!-- all.sh: NAME end -->` gets the rows
# of benches/NAME.sh alone. Nothing else in the file changes.
#
# Settings (environment variables):
#   BENCH_ONLY="create conda ..."   the scripts to run (default: all, in the order below);
#                                   the docs' rows of the others are kept as they were
#   BENCH_BEFORE=PATH               hierarchy.sh's envmod without the stack reload
#   BENCH_BEFORE_COMMIT=REV         build that commit's envmod for it (in a git worktree under
#                                   the target dir); neither set: that ratio is skipped, and
#                                   the table says so
#   BENCH_ENVMOD=PATH               use this envmod instead of building this tree
#   BENCH_QUICK=1                   each script at its smallest settings (a minute or two each);
#                                   the docs are not rewritten unless BENCH_DOCS is set
#   BENCH_DOCS=FILE                 the file to rewrite (default docs/performance.md)
# Any other BENCH_* variable reaches every script (BENCH_PYTHON, BENCH_TMPDIR, ...).
#
# Results: target/bench-results/all-<timestamp>/ (ratios.tsv, summary.md, one log per script).
set -euo pipefail

case "${1:-}" in
    -h | --help) sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BENCH_NAME=all
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"
cd "$REPO"

ALL=(create conda clone update adopt sharing course provides hierarchy activate kernel)
read -ra ONLY <<<"${BENCH_ONLY:-${ALL[*]}}"
for b in "${ONLY[@]}"; do
    [[ " ${ALL[*]} " == *" $b "* ]] || die "BENCH_ONLY: '$b' is not one of: ${ALL[*]}"
done
QUICK=${BENCH_QUICK:-}
DOCS=${BENCH_DOCS:-}
if [[ -z $DOCS && -z $QUICK ]]; then DOCS=$REPO/docs/performance.md; fi
if [[ -n $DOCS ]]; then
    [[ -f $DOCS ]] || die "BENCH_DOCS=$DOCS is not a file"
    { grep -q '^<!-- all.sh: begin -->$' "$DOCS" && grep -q '^<!-- all.sh: end -->$' "$DOCS"; } \
        || die "$DOCS has no '<!-- all.sh: begin -->' ... '<!-- all.sh: end -->' block to rewrite"
fi

# The smallest settings each script accepts, for a run that only checks that all of them work.
quick_settings() { # NAME: one VAR=VALUE a line
    local big=(BENCH_BIG_NAMES=500 "BENCH_BIG_SPECS=pkg499 pkg498 pkg450 pkg400")
    case $1 in
        create | sharing | update) printf '%s\n' BENCH_RUNS=10 BENCH_WARMUP=1 ;;
        clone) printf '%s\n' BENCH_RUNS=3 BENCH_WARMUP=1 ;;
        conda) printf '%s\n' BENCH_RUNS=10 BENCH_WARMUP=1 BENCH_BIG_RUNS=10 "${big[@]}" ;;
        course) printf '%s\n' BENCH_RUNS=3 BENCH_PKGS=5 BENCH_SIZE=2 BENCH_STUDENTS=4 BENCH_ENVS=20 ;;
        provides) printf '%s\n' BENCH_RUNS=10 BENCH_SITE_BATCH=1 "${big[@]}" ;;
        hierarchy) printf '%s\n' BENCH_ROUNDS=5 BENCH_BATCH=1 BENCH_ENVS=3 ;;
        activate) printf '%s\n' BENCH_RUNS=3 BENCH_WARMUP=1 BENCH_LOOPS=20 ;;
        kernel) printf '%s\n' BENCH_RUNS=3 ;;
        adopt) printf '%s\n' BENCH_RUNS=3 ;;
    esac
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$TARGET_DIR/bench-results/all-$stamp
mkdir -p "$OUT"
RATIOS=$OUT/ratios.tsv
: >"$RATIOS"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src templates Cargo.toml Cargo.lock benches 2>/dev/null) ]]; then commit+=" + changes"; fi

# --- the binaries -------------------------------------------------------------------------------
before=
if [[ -n ${BENCH_BEFORE:-} ]]; then
    before=$(realpath "$BENCH_BEFORE") || die "BENCH_BEFORE=$BENCH_BEFORE not found"
    [[ -x $before ]] || die "BENCH_BEFORE=$BENCH_BEFORE is not executable"
elif [[ -n ${BENCH_BEFORE_COMMIT:-} && " ${ONLY[*]} " == *" hierarchy "* ]]; then
    rev=$(git rev-parse --verify --short "${BENCH_BEFORE_COMMIT}^{commit}") \
        || die "BENCH_BEFORE_COMMIT=$BENCH_BEFORE_COMMIT is not a commit"
    src=$TARGET_DIR/bench-before-src
    step "building envmod at $rev for hierarchy.sh's before arm (a git worktree in $src)"
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree add --detach "$src" "$rev" >&2 || die "git worktree add $src $rev failed"
    # The same target dir: the dependencies this tree already built are reused.
    (cd "$src" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked --bin envmod >&2) \
        || die "cargo build --release of $rev failed"
    cp "$TARGET_DIR/release/envmod" "$OUT/envmod-before"
    git worktree remove --force "$src"
    before=$OUT/envmod-before
fi
bench_envmod BENCH_ENVMOD
cp "$BENCH_BUILT" "$OUT/envmod"
step "envmod: $BENCH_SOURCE, copied to $OUT/envmod"

# --- the runs -----------------------------------------------------------------------------------
notes=()
failed=()
for b in "${ONLY[@]}"; do
    settings=()
    if [[ -n $QUICK ]]; then mapfile -t settings < <(quick_settings "$b"); fi
    extra=(BENCH_ENVMOD="$OUT/envmod")
    if [[ $b == hierarchy ]]; then
        extra=(BENCH_AFTER="$OUT/envmod")
        if [[ -n $before ]]; then extra+=(BENCH_BEFORE="$before"); else
            extra+=(BENCH_BEFORE=)
            notes+=("hierarchy: create before/after not timed (set BENCH_BEFORE=PATH or BENCH_BEFORE_COMMIT=REV)")
        fi
    fi
    log=$OUT/$b.log
    step "$b: bash benches/$b.sh ${settings[*]} (log: $log)"
    t0=$(date +%s)
    rc=0
    env "${extra[@]}" BENCH_RATIOS="$RATIOS" "${settings[@]}" bash "$REPO/benches/$b.sh" >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - t0))
    if ((rc == 0)); then
        step "$b: done in ${secs}s"
    else
        step "$b: FAILED (exit $rc) after ${secs}s; the end of its log:"
        tail -n 15 "$log" | sed 's/^/    /' >&2
        failed+=("$b")
        printf '%s\t%s\t\t\t\t\n' "$b" "failed (exit $rc): see $log" >>"$RATIOS"
    fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table and the docs ---------------------------------------------------------------------
mode="full settings"
[[ -z $QUICK ]] || mode="BENCH_QUICK=1 (smallest settings: not figures to quote)"
header="$date_start, commit $commit, $(nproc) cores, load average $load_start at the start and $load_end at the end, $mode"
python3 - "$RATIOS" "$OUT/summary.md" "$header" "${DOCS:-}" "${ONLY[*]}" "${notes[@]}" <<'EOF'
import re, sys
ratios, summary, header, docs, ran, notes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(), sys.argv[6:]

def ms(x):
    x = float(x)
    return f"{x:.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"

rows = []
for line in open(ratios):
    f = line.rstrip("\n").split("\t")
    if len(f) != 6:
        sys.exit(f"a ratio line has {len(f)} fields, not 6: {line!r}")
    rows.append(f)

def table(rs, with_bench):
    head = ["bench"] if with_bench else []
    out = ["| " + " | ".join(head + ["what", "against", "envmod", "peer", "ratio"]) + " |",
           "|" + "---|" * (len(head) + 2) + "---:|---:|---:|"]
    for b, what, peer, o, p, r in rs:
        cells = [f"`{b}.sh`"] if with_bench else []
        if not o:
            cells += [f"**{what}**", "", "", "", ""]
        else:
            cells += [what, peer, ms(o), ms(p), f"{float(r):.2f}x"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)

text = f"Last run of `bash benches/all.sh`: {header}.\n\n" + table(rows, True)
if notes:
    text += "\n\n" + "\n".join(f"- {n}" for n in notes)
open(summary, "w").write(text + "\n")
print(text)
if not docs:
    sys.exit(0)
doc = open(docs).read()
def put(doc, tag, body):
    pat = re.compile(rf"(^<!-- all\.sh: {tag}begin -->\n).*?(^<!-- all\.sh: {tag}end -->$)", re.S | re.M)
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), doc, count=1)
if set(ran) != {"create", "conda", "clone", "update", "adopt", "sharing", "course", "provides", "hierarchy", "activate", "kernel"}:
    # A partial run keeps the summary's rows of the scripts it did not run.
    m = re.search(r"^<!-- all\.sh: begin -->\n(.*?)^<!-- all\.sh: end -->$", doc, re.S | re.M)
    kept = [l for l in m.group(1).splitlines() if l.startswith("| `") and l.split("`")[1][:-3] not in ran]
    if kept:
        was = re.search(r"^Last run of `bash benches/all.sh`: (.*?)\.$", m.group(1), re.M)
        text += ("\n\nNot run this time, kept from the run before"
                 + (f" ({was.group(1)})" if was else "") + ":\n\n" + table([], True) + "\n" + "\n".join(kept))
doc = put(doc, "", text)
for b in ran:
    mine = [r for r in rows if r[0] == b]
    if mine:
        doc = put(doc, f"{b} ", f"From `bash benches/all.sh`: {header}.\n\n" + table(mine, False))
open(docs, "w").write(doc)
print(f"\nrewrote the all.sh blocks of {docs}", file=sys.stderr)
EOF
echo "results: $OUT"
if ((${#failed[@]})); then die "failed: ${failed[*]} (their logs are in $OUT)"; fi
