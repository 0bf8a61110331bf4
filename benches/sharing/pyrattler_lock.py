#!/usr/bin/env python3
"""What `envmod create -p PREFIX -f LOCK` does, through py-rattler.

    pyrattler_lock.py LOCK PREFIX CACHE_DIR PYTHON_VERSION

Reads the linux-64 records of LOCK's default environment and links them into PREFIX from the
package cache CACHE_DIR, with the site's Python standing in for the `python` record (as
envmod does for a lock exported on the site's Python). No solve.
"""
import asyncio
import os
import sys

import rattler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conda"))
from pyrattler_env import site_python_record  # noqa: E402


async def main():
    lock, prefix, cache, version = sys.argv[1:5]
    env = rattler.LockFile.from_path(lock).default_environment()
    records = env.conda_repodata_records()["linux-64"]
    await rattler.install(
        records + [site_python_record(version)],
        target_prefix=prefix,
        cache_dir=cache,
        ignored_packages={"python"},
        execute_link_scripts=False,
        show_progress=False,
    )


asyncio.run(main())
# py-rattler 0.28 can crash in interpreter shutdown after its work is done (see
# benches/conda/pyrattler_env.py): leave without finalization.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
