#!/usr/bin/env python3
"""One run of benchmark 3 as a JSON line, for benches/conda.sh.

    parse_run.py TOOL STDERR_FILE GNU_TIME_FILE

TOOL is `envmod` (stderr of `envmod -v create`: "loaded N records in X", "solved in Y") or
`py-rattler` (stderr of pyrattler_env.py --timings: "solve (load + solve) N records in X").
GNU_TIME_FILE is what `/usr/bin/time -v -o FILE` wrote.
"""
import json
import re
import sys

UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}


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
            parts = [float(p) for p in value.split(":")]
            secs = 0.0
            for p in parts:
                secs = secs * 60 + p
            out["wall_ms"] = secs * 1000
        elif key == "User time (seconds)":
            out["user_ms"] = float(value) * 1000
        elif key == "System time (seconds)":
            out["sys_ms"] = float(value) * 1000
        elif key == "Exit status":
            out["exit"] = int(value)
    return out


def main():
    tool, err_path, time_path = sys.argv[1:4]
    err = open(err_path, encoding="utf-8", errors="replace").read()
    run = {"tool": tool, **gnu_time(time_path)}
    if tool == "envmod":
        m = re.search(r"loaded (\d+) records in (\S+)", err)
        s = re.search(r"solved in (\S+)", err)
        if not (m and s and "failed to install packages" in err):
            sys.exit(f"parse_run.py: envmod did not solve and then fail to install:\n{err}")
        run.update(records=int(m.group(1)), load_ms=ms(m.group(2)), solve_ms=ms(s.group(1)))
        run["in_process_ms"] = run["load_ms"] + run["solve_ms"]
    else:
        m = re.search(r"solve \(load \+ solve\) (\d+) records in ([0-9.]+)ms", err)
        if not m:
            sys.exit(f"parse_run.py: no timing from the py-rattler script:\n{err}")
        run.update(solution=int(m.group(1)), in_process_ms=float(m.group(2)))
    print(json.dumps(run))


main()
