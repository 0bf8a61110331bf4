"""Two commands timed in turn (A, B, then B, A, ...), so that a change in the machine's load
falls on both alike; each run is preceded by removing the directory the command makes.
Writes a JSON file shaped as hyperfine's export (results[].command, results[].times in
seconds) and prints the median of each and the median of the pairwise ratios A/B.

    python3 benches/compare/alternate.py RUNS WARMUP OUT.json \
        NAME_A REMOVE_A 'COMMAND A' NAME_B REMOVE_B 'COMMAND B'

Commands are split as a shell splits words, but no shell runs them.
"""
import json, shlex, shutil, statistics, subprocess, sys, time

if len(sys.argv) != 10:
    sys.exit(__doc__)
runs, warmup, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cmds = [(sys.argv[4], sys.argv[5], shlex.split(sys.argv[6])), (sys.argv[7], sys.argv[8], shlex.split(sys.argv[9]))]


def once(remove, argv):
    shutil.rmtree(remove, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=300)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{shlex.join(argv)} exited with {done.returncode}")
    return took


for _ in range(warmup):
    for _, remove, argv in cmds:
        once(remove, argv)
times = {name: [] for name, _, _ in cmds}
for i in range(runs):
    order = cmds if i % 2 == 0 else cmds[::-1]
    for name, remove, argv in order:
        times[name].append(once(remove, argv))
(a, *_), (b, *_) = cmds
ratios = [x / y for x, y in zip(times[a], times[b])]
with open(out, "w") as f:
    json.dump({"results": [{"command": n, "times": t} for n, t in times.items()]}, f)
for n, t in times.items():
    print(f"{n}: median {statistics.median(t) * 1000:.1f} ms (min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f}) over {len(t)} runs", file=sys.stderr)
print(f"median of the {len(ratios)} pairwise ratios {a} / {b}: {statistics.median(ratios):.3f}", file=sys.stderr)
