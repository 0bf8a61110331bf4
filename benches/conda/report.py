#!/usr/bin/env python3
"""The table of benches/conda.sh.

    report.py CREATE_JSON BIG_JSON BIG_RUNS_JSONL NPKGS BIG_INFO
"""
import json
import statistics
import sys

create_json, big_json, runs_path, npkgs, big_info = sys.argv[1:6]
create = {r["command"]: r for r in json.load(open(create_json))["results"]}
big = {r["command"]: r for r in json.load(open(big_json))["results"]}
runs = [json.loads(line) for line in open(runs_path) if line.strip()]


def med(tool, key):
    return statistics.median(r[key] for r in runs if r["tool"] == tool)


rows = []
verdicts = []


def row(*cells):
    rows.append(tuple(str(c) for c in cells))


def verdict(name, value, limit, unit="x"):
    ok = value <= limit
    verdicts.append(f"target {name}: {value:.2f}{unit} vs <= {limit:g}{unit}: {'MET' if ok else 'NOT MET'}")
    return "MET" if ok else "NOT MET"


def hf(results, name):
    r = results[name]
    return r["median"] * 1000, r["min"] * 1000, r["max"] * 1000


e, r_, u = (hf(create, n) for n in ("envmod create", "py-rattler solve+install", "uv venv + uv pip install"))
be = hf(big, "envmod create (until the download fails)")
br = hf(big, "py-rattler solve()")

row("benchmark", "command", "median", "min", "max", "ratio", "target", "verdict")
row(f"1. {npkgs} noarch pkgs, warm cache", "envmod create", f"{e[0]:.1f} ms", f"{e[1]:.1f}", f"{e[2]:.1f}", "", "", "")
row("", "py-rattler solve + install", f"{r_[0]:.1f} ms", f"{r_[1]:.1f}", f"{r_[2]:.1f}", "", "", "")
row("", "envmod / py-rattler", "", "", "", f"{e[0] / r_[0]:.2f}x", "<= 1.0x",
    verdict("1 (envmod / py-rattler, create)", e[0] / r_[0], 1.0))
row(f"2. {npkgs} wheels, warm uv cache", "uv venv + uv pip install", f"{u[0]:.1f} ms", f"{u[1]:.1f}", f"{u[2]:.1f}", "", "", "")
row("", "envmod / uv", "", "", "", f"{e[0] / u[0]:.2f}x", "<= 2.0x",
    verdict("2 (envmod / uv)", e[0] / u[0], 2.0))
row("3. solve, big channel", "envmod create, whole process*", f"{be[0]:.0f} ms", f"{be[1]:.0f}", f"{be[2]:.0f}", "", "", "")
row("", "py-rattler solve(), whole process", f"{br[0]:.0f} ms", f"{br[1]:.0f}", f"{br[2]:.0f}", "", "", "")
row("", "envmod / py-rattler, whole process", "", "", "", f"{be[0] / br[0]:.2f}x", "<= 0.8x",
    verdict("3 (envmod / py-rattler, whole process)", be[0] / br[0], 0.8))
row("", "envmod load repodata (in process)", f"{med('envmod', 'load_ms'):.0f} ms", "", "", "", "", "")
row("", "envmod solve (in process)", f"{med('envmod', 'solve_ms'):.0f} ms", "", "", "", "", "")
row("", "envmod load + solve (in process)", f"{med('envmod', 'in_process_ms'):.0f} ms", "", "", "", "", "")
row("", "py-rattler solve() call (in process)", f"{med('py-rattler', 'in_process_ms'):.0f} ms", "", "", "", "", "")
row("", "envmod / py-rattler, in process", "", "", "",
    f"{med('envmod', 'in_process_ms') / med('py-rattler', 'in_process_ms'):.2f}x", "<= 0.8x",
    verdict("3 (envmod / py-rattler, load + solve in process)",
            med("envmod", "in_process_ms") / med("py-rattler", "in_process_ms"), 0.8))
row("", "envmod peak RSS*", f"{med('envmod', 'rss_mb'):.0f} MB", "", "", "", "<= 350 MB",
    verdict("3 (envmod peak RSS)", med("envmod", "rss_mb"), 350, " MB"))
row("", "py-rattler peak RSS", f"{med('py-rattler', 'rss_mb'):.0f} MB", "", "", "", "", "")

w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for i, r in enumerate(rows):
    print("  ".join(c.ljust(w[j]) if j < 2 else c.rjust(w[j]) for j, c in enumerate(r)).rstrip())
    if i == 0:
        print("  ".join("-" * x for x in w))
print()
records = runs[0].get("records")
print(f"3: {big_info}; envmod loaded {records} of them (the specs' closure), "
      f"the solution has {runs[[r['tool'] for r in runs].index('py-rattler')]['solution']} records.")
print("*  envmod has no solve-only mode: it solves, then fails at the first package download "
      "(the channel has no archives). Whole-process time and RSS run until that failure; "
      "'in process' times are envmod -v's 'loaded N records in' and 'solved in' lines and "
      "the time of py-rattler's solve() call (which loads repodata too).")
print()
for v in verdicts:
    print(v)
