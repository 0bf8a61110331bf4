#!/usr/bin/env python3
"""What `envmod create -p PREFIX SPEC... -c CHANNEL` does with conda packages, through py-rattler.

    pyrattler_env.py --channel URL --cache DIR --python-version X.Y.Z [--prefix P] SPEC...

Solves SPEC... against CHANNEL (linux-64 and noarch) with the detected virtual packages and
the site's Python pinned as a `python` record of the given version (as envmod does), then,
with --prefix, links the solution into P from the package cache DIR/pkgs, leaving `python`
alone. Repodata is cached in DIR/repodata. Without --prefix it only solves. --timings prints
the in-process times of the solve (repodata loading included) and of the install to stderr.
Exits 0 on success, skipping the interpreter's finalization (see the end of the file).
"""
import argparse
import asyncio
import os
import sys
import time

import rattler


def site_python_record(version):
    record = rattler.PackageRecord(
        name="python", version=version, build=rattler.BuildString("site_python"), build_number=0,
        subdir="linux-64",
    )
    return rattler.RepoDataRecord(
        record, f"python-{version}-site_python.conda", "file:///site-python/python.conda",
        "file:///site-python/"
    )


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channel", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--python-version", required=True)
    ap.add_argument("--prefix")
    ap.add_argument("--timings", action="store_true")
    ap.add_argument("specs", nargs="+")
    args = ap.parse_args()

    t0 = time.perf_counter()
    gateway = rattler.Gateway(cache_dir=f"{args.cache}/repodata")
    records = await rattler.solve(
        sources=[rattler.Channel(args.channel)],
        specs=args.specs,
        gateway=gateway,
        platforms=["linux-64", "noarch"],
        pinned_packages=[site_python_record(args.python_version)],
        virtual_packages=rattler.VirtualPackage.detect(),
    )
    t1 = time.perf_counter()
    if args.timings:
        print(f"solve (load + solve) {len(records)} records in {(t1 - t0) * 1000:.1f}ms",
              file=sys.stderr)
    if args.prefix:
        await rattler.install(
            records,
            target_prefix=args.prefix,
            cache_dir=f"{args.cache}/pkgs",
            ignored_packages={"python"},
            execute_link_scripts=False,
            show_progress=False,
        )
        if args.timings:
            print(f"install in {(time.perf_counter() - t1) * 1000:.1f}ms", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
    # py-rattler 0.28 sometimes crashes while the interpreter shuts down (SIGSEGV, or SIGABRT with
    # "PyGILState_Release: thread state ... must be current"), after all its work is done: leave
    # without the interpreter's finalization.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
