"""Start Jupyter kernels with jupyter_client and time each start to its first execute_reply.

    python start.py check KERNELS_DIR NAME EXPECTED   run one cell, check what it prints
    python start.py time KERNELS_DIR ROUNDS OUT.json NAME...

`time` starts each named kernel once per round, the order turned round every other round, and
writes {"NAME": [seconds, ...], ...}: from `start_kernel()` to the `execute_reply` of the first
cell, sent as soon as the channels are up (no kernel_info wait before it).
"""

import json
import sys
import time

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

CODE = "import os; os.environ.get('FAKE_GCC_VERSION')"


def start_to_reply(ksm, name, code=CODE, hook=None):
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        # The kernel_info handshake: until it answers, the iopub socket may not be connected
        # yet and the first cell's output can be lost (a "slow joiner").
        kc.wait_for_ready(timeout=120)
        if hook is None:
            msg_id = kc.execute(code)
            while True:
                reply = kc.get_shell_msg(timeout=120)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        else:
            reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
        elapsed = time.perf_counter() - t0
        if reply["msg_type"] != "execute_reply" or reply["content"]["status"] != "ok":
            sys.exit(f"kernel {name}: the cell failed: {reply['content']}")
        return elapsed
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    mode, kernels_dir = sys.argv[1], sys.argv[2]
    ksm = KernelSpecManager(kernel_dirs=[kernels_dir], ensure_native_kernel=False)
    if mode == "check":
        name, expected = sys.argv[3], sys.argv[4]
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        code = "import os, sys; print(os.environ.get('FAKE_GCC_VERSION'), sys.prefix)"
        start_to_reply(ksm, name, code, hook)
        got = "".join(out).strip()
        if got != expected:
            sys.exit(f"kernel {name} printed {got!r}, not {expected!r}")
        return
    rounds, out_file, names = int(sys.argv[3]), sys.argv[4], sys.argv[5:]
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            times[n].append(start_to_reply(ksm, n))
        print(f"    round {r + 1}/{rounds} done", file=sys.stderr)
    with open(out_file, "w") as f:
        json.dump(times, f)


main()
