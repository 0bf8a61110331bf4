#!/usr/bin/env python3
"""One run as a JSON line, and the table, for benches/provides.sh.

    report.py run LABEL ROUND STDERR_FILE GNU_TIME_FILE
        STDERR_FILE is what `envmod -v create ...` wrote; GNU_TIME_FILE what `/usr/bin/time -v
        -o FILE` wrote. Prints {"label", "round", "wall_ms", "rss_mb", "load_ms", "solve_ms",
        "records", "site_read_ms", "site_packages", "site_dirs"} (what the run printed).
    report.py table OUT_DIR RUNS SITE_BATCH BIG_INFO SITE_READS
        OUT_DIR holds rounds/big-I.json and rounds/site-{a,b}-I.json (hyperfine --export-json)
        and runs.jsonl (the lines above).
"""
import glob
import json
import os
import re
import statistics
import sys

UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}
GOAL = 1.05


def ms(text):
    """A Rust Duration as `{:.2?}` prints it (744.80ms, 1.15s, 399.19µs) in milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def gnu_time(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        key, _, value = line.strip().rpartition(": ")
        if key == "Maximum resident set size (kbytes)":
            out["rss_mb"] = int(value) / 1024
        elif key.startswith("Elapsed (wall clock) time"):
            secs = 0.0
            for p in value.split(":"):
                secs = secs * 60 + float(p)
            out["wall_ms"] = secs * 1000
        elif key == "Exit status":
            out["exit"] = int(value)
    return out


def run(label, round_, err_path, time_path):
    err = open(err_path, encoding="utf-8", errors="replace").read()
    out = {"label": label, "round": int(round_), **gnu_time(time_path)}
    m = re.search(r"loaded (\d+) records in (\S+)", err)
    if m:
        out.update(records=int(m.group(1)), load_ms=ms(m.group(2)))
    m = re.search(r"solved in (\S+)", err)
    if m:
        out["solve_ms"] = ms(m.group(1))
    # `read N site packages from M directories in X` (the wording may vary a little).
    m = re.search(r"read (\d+) site packages?(?: from (\d+) director(?:y|ies))?.*? in ([0-9.]+(?:ns|µs|us|ms|s))\b", err)
    if m:
        out.update(site_packages=int(m.group(1)), site_read_ms=ms(m.group(3)))
        if m.group(2):
            out["site_dirs"] = int(m.group(2))
    print(json.dumps(out))


def stats(xs):
    xs = sorted(xs)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {"median": statistics.median(xs), "p25": q1, "p75": q3, "min": xs[0], "max": xs[-1], "n": len(xs)}


def fmt_ms(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


rows = []
notes = []


def row(*cells):
    rows.append(tuple(str(c) for c in cells))


def stat_row(what, arm, xs, unit="ms"):
    s = stats(xs)
    f = fmt_ms if unit == "ms" else (lambda x: f"{x:.0f}")
    row(what, arm, f"{f(s['median'])} {unit}", f"{f(s['p25'])}–{f(s['p75'])}",
        f"{f(s['min'])}–{f(s['max'])}", s["n"], "")
    return s


def ratio_row(what, a, b, paired):
    """a / b as the ratio of the medians, and the spread of the per-round ratios."""
    r = statistics.median(a) / statistics.median(b)
    p = stats(paired)
    row(what, "ratio", f"{r:.3f}x", f"{p['p25']:.2f}–{p['p75']:.2f}x",
        f"{p['min']:.2f}–{p['max']:.2f}x", p["n"], f"per-round median {p['median']:.3f}x")
    return r, p


def spread_pct(s):
    m = s["median"]
    return (s["p75"] - s["p25"]) / m * 100, (s["max"] - s["min"]) / m * 100


def hyperfine_times(out, prefix, cpu=False):
    """{command name: {round: [ms...]}} from OUT/rounds/PREFIX-I.json: the wall time of each
    run, or with `cpu` the round's mean user + system time (hyperfine keeps no per-run CPU)."""
    times = {}
    for path in glob.glob(os.path.join(out, "rounds", f"{prefix}-*.json")):
        i = int(re.search(r"-(\d+)\.json$", path).group(1))
        for r in json.load(open(path))["results"]:
            if cpu:
                value = [(r["user"] + r["system"]) * 1000]
            else:
                value = [t * 1000 for t in r["times"]]
            times.setdefault(r["command"], {})[i] = value
    return times


def paired(by_round_a, by_round_b, f=statistics.median):
    return [f(by_round_a[i]) / f(by_round_b[i]) for i in sorted(by_round_a) if i in by_round_b]


def table(out, nrounds, batch, big_info, site_reads):
    runs = [json.loads(line) for line in open(os.path.join(out, "runs.jsonl")) if line.strip()]

    def field(label, key):
        return {r["round"]: r[key] for r in runs if r["label"] == label and key in r}

    row("measure", "arm", "median", "p25–p75", "min–max", "n", "")

    # --- 2 ---
    hf = hyperfine_times(out, "big")
    w_with = [t for ts in hf["with"].values() for t in ts]
    w_without = [t for ts in hf["without"].values() for t in ts]
    records = next((r["records"] for r in runs if r["label"] == "big-with" and "records" in r), "?")
    row(f"2. solve, {big_info.split(',')[0]}; {records} loaded", "", "", "", "", "", "")
    s_without = stat_row("  wall, hyperfine", "without", w_without)
    stat_row("", "with", w_with)
    wall_r, wall_p = ratio_row("", w_with, w_without, paired(hf["with"], hf["without"]))
    ratios = {"wall (hyperfine)": (wall_r, wall_p)}
    # CPU time leaves out the waits for a core that other load causes, which wall time counts.
    cpu = hyperfine_times(out, "big", cpu=True)
    c_with = [t for ts in cpu["with"].values() for t in ts]
    c_without = [t for ts in cpu["without"].values() for t in ts]
    stat_row("  CPU user+sys, hyperfine", "without", c_without)
    stat_row("", "with", c_with)
    ratios["CPU user+sys (hyperfine)"] = ratio_row("", c_with, c_without,
                                                   paired(cpu["with"], cpu["without"]))
    for key, what in (("load_ms", "  load repodata (-v)"), ("solve_ms", "  solve, `solved in` (-v)")):
        a, b = field("big-with", key), field("big-without", key)
        stat_row(what, "without", list(b.values()))
        stat_row("", "with", list(a.values()))
        ratios[what.strip()] = ratio_row("", list(a.values()), list(b.values()),
                                         [a[i] / b[i] for i in a if i in b])
    a, b = field("big-with", "rss_mb"), field("big-without", "rss_mb")
    stat_row("  peak RSS (-v runs)", "without", list(b.values()), "MB")
    stat_row("", "with", list(a.values()), "MB")

    # --- 3 ---
    for case, what in (("a", "3a. create -n x, no specs"), ("b", "3b. create -n x pkg000 (1 noarch package)")):
        hf = hyperfine_times(out, f"site-{case}")
        reads = [t for ts in hf["reads"].values() for t in ts]
        ignores = [t for ts in hf["ignores"].values() for t in ts]
        row(what, "", "", "", "", "", "")
        s_i = stat_row("  wall, hyperfine", "--ignore-site-packages", ignores)
        s_r = stat_row("", "reads site packages", reads)
        ratio_row("", reads, ignores, paired(hf["reads"], hf["ignores"]))
        diffs = [statistics.median(hf["reads"][i]) - statistics.median(hf["ignores"][i])
                 for i in hf["reads"] if i in hf["ignores"]]
        d = stats(diffs)
        row("", "difference", f"{d['median']:+.1f} ms", f"{d['p25']:+.1f}–{d['p75']:+.1f}",
            f"{d['min']:+.1f}–{d['max']:+.1f}", d["n"], "per round, of the batch medians")
        cpu = hyperfine_times(out, f"site-{case}", cpu=True)
        stat_row("  CPU user+sys, hyperfine", "--ignore-site-packages",
                 [t for ts in cpu["ignores"].values() for t in ts])
        stat_row("", "reads site packages", [t for ts in cpu["reads"].values() for t in ts])
        diffs = [cpu["reads"][i][0] - cpu["ignores"][i][0] for i in cpu["reads"] if i in cpu["ignores"]]
        d = stats(diffs)
        row("", "difference", f"{d['median']:+.1f} ms", f"{d['p25']:+.1f}–{d['p75']:+.1f}",
            f"{d['min']:+.1f}–{d['max']:+.1f}", d["n"], "per round, of the batch means")
        read = field(f"site-{case}-reads", "site_read_ms")
        if read:
            n = field(f"site-{case}-reads", "site_packages")
            dirs = field(f"site-{case}-reads", "site_dirs")
            label = f"  `read {statistics.median(n.values()):.0f} site packages"
            if dirs:
                label += f" from {statistics.median(dirs.values()):.0f} directories"
            stat_row(label + "` (-v)", "reads site packages", list(read.values()))
        if case == "b":
            solve = field("site-b-reads", "solve_ms")
            if solve:
                stat_row("  solve, `solved in` (-v)", "--ignore-site-packages",
                         list(field("site-b-ignores", "solve_ms").values()))
                stat_row("", "reads site packages", list(solve.values()))

    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) if j < 2 or j == 6 else c.rjust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    print()
    iqr, full = spread_pct(s_without)
    print(f"goal for 2: with / without <= {GOAL}x (ratio of the medians):")
    for what, (r, p) in ratios.items():
        if what.startswith("load"):
            # The same query in both arms: the stand-ins join after the records are loaded.
            print(f"  {what}: {r:.3f}x, a control: both arms load the same records, so its "
                  "distance from 1 is this run's noise")
            continue
        verdict = "MET" if r <= GOAL else "NOT MET"
        print(f"  {what}: {r:.3f}x {verdict} (per-round ratios {p['min']:.2f}–{p['max']:.2f}x)")
    print(f"noise: the \"without\" arm's hyperfine wall times span {iqr:.0f}% of its median "
          f"between p25 and p75, {full:.0f}% between min and max; a difference smaller than "
          "that is not resolved by this run.")
    if site_reads != "yes":
        print("3: this envmod printed no `read N site packages` line, so it does not read the site "
              "Python's distributions yet: both arms of 3 time the same work (a baseline). "
              "Rerun with an envmod that reads them.")
    print("CPU rows: hyperfine's user + system time; in 2 one run per arm per round, in 3 the "
          "mean of the round's batch (n counts rounds).")
    print(f"2 runs each arm once per round under hyperfine and once with -v (GNU time); "
          f"3 runs {batch} per arm per round under hyperfine and once with -v. {nrounds} rounds; "
          "the arms alternate which goes first. Per-round ratios pair the runs of one round.")
    print("2: envmod has no solve-only mode: it solves, then fails at the first package "
          "download (the channel has no archives). Wall time runs until that failure.")


def main(argv):
    if len(argv) == 6 and argv[1] == "run":
        run(*argv[2:6])
    elif len(argv) == 7 and argv[1] == "table":
        table(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    else:
        sys.exit(__doc__)


main(sys.argv)
