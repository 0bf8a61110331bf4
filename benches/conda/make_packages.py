#!/usr/bin/env python3
"""Test packages for benches/conda.sh, written with the standard library only.

    make_packages.py channel DIR N [SIZE]
                                       N noarch-python conda packages pkg000.. as .tar.bz2
                                       in DIR/noarch (run `envmod index DIR` afterwards);
                                       SIZE > 0 adds SIZE submodules of real-sized code
                                       (~300 lines each) to every package, all imported
    make_packages.py wheels DIR N      the same N packages as py3-none-any wheels in DIR
    make_packages.py python DIR VERSION SUBDIR...
                                       an empty stand-in `python VERSION` package for each
                                       SUBDIR (e.g. osx-arm64), so a channel of noarch
                                       packages solves for other platforms
    make_packages.py big DIR NAMES VERSIONS [--mpi]
                                       a repodata-only linux-64 channel (no archives):
                                       NAMES x VERSIONS x 2 builds records; with --mpi, the
                                       two builds of every 50th package (pkg0, pkg50, ..,
                                       pkg4000, ..) are conda-forge's MPI variants
                                       mpi_openmpi_h0_0 and mpi_mpich_h1_0, and the channel
                                       adds openmpi and mpich (20 records each) and the
                                       noarch `mpi` mutex (mpi 1.0 openmpi, mpi 1.0 mpich)
    make_packages.py from-wheel DIR PYVER WHEEL [--build STR] [--depends SPEC]...
                                       a linux-64 conda package in DIR/linux-64 holding a
                                       real wheel's files (e.g. numpy's, from PyPI) under
                                       lib/pythonPYVER/site-packages, depending on
                                       `python PYVER.*` and every SPEC; build STR (default
                                       h0_wheel)

Package i is called pkg<i:03>, version 1.0, and holds the module pkg<i:03> (__init__.py and
core.py, plus part00.. with SIZE) and its dist-info. Every third package after the first depends on pkg<i//2>, in
both formats (conda `depends` and wheel `Requires-Dist`). Builds are reproducible.
"""
import base64
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import zipfile

MTIME = 1_672_531_200  # 2023-01-01
TIMESTAMP_MS = 1_700_000_000_000
BUILD = "pyhd8ed1ab_0"


def name(i):
    return f"pkg{i:03d}"


def deps(i):
    return [name(i // 2)] if i > 0 and i % 3 == 0 else []


SIZE = 0


def part(n, k):
    """About 300 lines of ordinary library code: classes, functions, docstrings, literals."""
    out = [f'"""{n}.part{k:02d}: envmod benchmark module."""', "import math", ""]
    for f in range(20):
        out += [
            f"class Thing{f}:",
            f'    """A thing, number {f}."""',
            "    def __init__(self, x=0, y=1.5, name='thing'):",
            "        self.x, self.y, self.name = x, y, name",
            "    def area(self):",
            f"        return math.pi * self.x * self.y + {f}",
            "    def __repr__(self):",
            f"        return f'Thing{f}({{self.x!r}}, {{self.y!r}}, {{self.name!r}})'",
            "",
            f"def helper{f}(items, scale={f}.5):",
            "    total = 0",
            "    for i, item in enumerate(items):",
            "        if i % 2 and item:",
            "            total += item * scale",
            "    return {'total': total, 'count': len(items), 'tag': '" + n + "'}",
            "",
        ]
    return "\n".join(out) + "\n"


def module_files(i):
    n = name(i)
    parts = "".join(f"from . import part{k:02d}  # noqa: F401\n" for k in range(SIZE))
    init = (
        f'"""{n}: envmod benchmark package."""\n'
        f"from .core import answer\n{parts}\nNAME = '{n}'\nVERSION = '1.0'\n"
    )
    imports = "".join(f"import {d}  # noqa: F401\n" for d in deps(i))
    core = f"{imports}\n\ndef answer():\n    return {i}\n"
    files = {f"{n}/__init__.py": init.encode(), f"{n}/core.py": core.encode()}
    for k in range(SIZE):
        files[f"{n}/part{k:02d}.py"] = part(n, k).encode()
    return files


def metadata(i, requires_prefix):
    n = name(i)
    lines = ["Metadata-Version: 2.1", f"Name: {n}", "Version: 1.0",
             f"Summary: envmod benchmark package {n}", "Requires-Python: >=3.8"]
    lines += [f"{requires_prefix}{d} >=1" for d in deps(i)]
    return ("\n".join(lines) + "\n").encode()


def add(tar, path, data, mode=0o644):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mtime = MTIME
    info.mode = mode
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def conda_package(i, out_dir):
    n = name(i)
    files = {f"site-packages/{p}": d for p, d in module_files(i).items()}
    dist = f"site-packages/{n}-1.0.dist-info"
    files[f"{dist}/METADATA"] = metadata(i, "Requires-Dist: ")
    files[f"{dist}/INSTALLER"] = b"conda\n"
    paths = [
        {"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d).hexdigest(),
         "size_in_bytes": len(d)}
        for p, d in sorted(files.items())
    ]
    index = {
        "name": n, "version": "1.0", "build": BUILD, "build_number": 0,
        "depends": ["python >=3.8"] + [f"{d} >=1" for d in deps(i)],
        "license": "BSD-3-Clause", "noarch": "python", "subdir": "noarch",
        "timestamp": TIMESTAMP_MS,
    }
    info = {
        "info/index.json": index,
        "info/paths.json": {"paths": paths, "paths_version": 1},
        "info/link.json": {"noarch": {"type": "python"}, "package_metadata_version": 1},
        "info/about.json": {"summary": f"{n} (envmod benchmark package)"},
    }
    path = os.path.join(out_dir, f"{n}-1.0-{BUILD}.tar.bz2")
    with tarfile.open(path, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
        for p, value in info.items():
            add(tar, p, json.dumps(value, indent=2, sort_keys=True).encode())
        add(tar, "info/files", "".join(p + "\n" for p in sorted(files)).encode())
        for p, d in sorted(files.items()):
            add(tar, p, d)


def python_package(version, subdir, out_dir):
    """`python VERSION` for SUBDIR with no files: enough for a solve for that platform."""
    system = "__osx >=11.0" if subdir.startswith("osx") else "__glibc >=2.17"
    index = {
        "name": "python", "version": version, "build": "h0_bench", "build_number": 0,
        "depends": [system], "license": "PSF-2.0", "subdir": subdir,
        "timestamp": TIMESTAMP_MS,
    }
    info = {
        "info/index.json": index,
        "info/paths.json": {"paths": [], "paths_version": 1},
    }
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"python-{version}-h0_bench.tar.bz2")
    with tarfile.open(path, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
        for p, value in info.items():
            add(tar, p, json.dumps(value, indent=2, sort_keys=True).encode())
        add(tar, "info/files", b"")


def wheel(i, out_dir):
    n = name(i)
    dist = f"{n}-1.0.dist-info"
    files = dict(module_files(i))
    files[f"{dist}/METADATA"] = metadata(i, "Requires-Dist: ")
    files[f"{dist}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: envmod-bench\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = ""
    for p, d in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        record += f"{p},sha256={digest},{len(d)}\n"
    record += f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    path = os.path.join(out_dir, f"{n}-1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            zi = zipfile.ZipInfo(p, date_time=(2023, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, d)


# With `big --mpi`: conda-forge's MPI providers, as (versions, what an MPI build needs).
MPI_PROVIDERS = {
    "openmpi": (["4.1.0", "4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.1.5", "4.1.6",
                 "5.0.0", "5.0.1", "5.0.2"], "openmpi >=4.1.0,<5.0a0"),
    "mpich": (["4.0.0", "4.0.1", "4.0.2", "4.0.3", "4.1.0", "4.1.1", "4.1.2",
               "4.2.0", "4.2.1", "4.2.2"], "mpich >=4.0,<5.0a0"),
}


def record(name, version, build, build_number, depends, subdir="linux-64"):
    return {"name": name, "version": version, "build": build, "build_number": build_number,
            "depends": depends, "subdir": subdir, "md5": "0" * 32, "sha256": "0" * 64,
            "size": 1000, "timestamp": TIMESTAMP_MS}


def big(out, names, nver, mpi=False):
    """Fake linux-64 records only: the solver sees them, nothing can be downloaded."""
    random.seed(1)
    os.makedirs(f"{out}/linux-64", exist_ok=True)
    os.makedirs(f"{out}/noarch", exist_ok=True)
    pk = {}
    for i in range(names):
        for v in range(nver):
            for b in range(2):
                depends = ["__glibc >=2.17"]
                if i > 10:
                    for j in random.sample(range(i), 3):
                        depends.append(f"pkg{j} >=1.{random.randint(0, nver // 2)}")
                build = f"h{b}_0"
                if mpi and i % 50 == 0:
                    impl = ("openmpi", "mpich")[b]
                    build = f"mpi_{impl}_h{b}_0"
                    depends += [MPI_PROVIDERS[impl][1], f"mpi 1.0 {impl}"]
                fn = f"pkg{i}-1.{v}-{build}.conda"
                pk[fn] = record(f"pkg{i}", f"1.{v}", build, b, depends)
    noarch = {}
    if mpi:
        for impl, (versions, _) in MPI_PROVIDERS.items():
            noarch[f"mpi-1.0-{impl}.conda"] = dict(
                record("mpi", "1.0", impl, 0, [], "noarch"), noarch="generic")
            for version in versions:
                for b in range(2):
                    build = f"h{b}_10{b}"
                    pk[f"{impl}-{version}-{build}.conda"] = record(
                        impl, version, build, 100 + b, ["__glibc >=2.17", f"mpi 1.0 {impl}"])
    with open(f"{out}/linux-64/repodata.json", "w") as f:
        json.dump({"info": {"subdir": "linux-64"}, "packages": {}, "packages.conda": pk,
                   "repodata_version": 1}, f)
    with open(f"{out}/noarch/repodata.json", "w") as f:
        json.dump({"info": {"subdir": "noarch"}, "packages": {}, "packages.conda": noarch,
                   "repodata_version": 1}, f)
    size = os.path.getsize(f"{out}/linux-64/repodata.json")
    print(f"{len(pk) + len(noarch)} records, linux-64/repodata.json {size // 1024} KiB")


def from_wheel(out_dir, pyver, whl, build="h0_wheel", depends=()):
    """A real library's wheel as a linux-64 conda package: the same files, the conda layout."""
    base = os.path.basename(whl)
    n, version = base.split("-")[:2]
    n = n.lower().replace("_", "-")
    files = {}
    with zipfile.ZipFile(whl) as zf:
        for zi in zf.infolist():
            if zi.is_dir():
                continue
            mode = (zi.external_attr >> 16) & 0o777 or 0o644
            files[f"lib/python{pyver}/site-packages/{zi.filename}"] = (zf.read(zi), mode)
    paths = [
        {"_path": p, "path_type": "hardlink", "sha256": hashlib.sha256(d).hexdigest(),
         "size_in_bytes": len(d)}
        for p, (d, _) in sorted(files.items())
    ]
    index = {
        "name": n, "version": version, "build": build, "build_number": 0,
        "depends": [f"python {pyver}.*", *depends], "license": "unknown", "subdir": "linux-64",
        "timestamp": TIMESTAMP_MS,
    }
    info = {
        "info/index.json": index,
        "info/paths.json": {"paths": paths, "paths_version": 1},
        "info/about.json": {"summary": f"{n} {version}, from {base}"},
    }
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{n}-{version}-{build}.tar.bz2")
    with tarfile.open(path, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
        for p, value in info.items():
            add(tar, p, json.dumps(value, indent=2, sort_keys=True).encode())
        add(tar, "info/files", "".join(p + "\n" for p in sorted(files)).encode())
        for p, (d, mode) in sorted(files.items()):
            add(tar, p, d, mode)
    print(f"{path}: {len(files)} files, {sum(1 for p in files if p.endswith('.py'))} .py")


def options(argv):
    """`argv` without its options, and the options: --mpi, --build STR, --depends SPEC..."""
    rest, opts = [], {"mpi": False, "build": "h0_wheel", "depends": []}
    args = iter(argv)
    for a in args:
        if a == "--mpi":
            opts["mpi"] = True
        elif a in ("--build", "--depends"):
            value = next(args, None)
            if value is None:
                sys.exit(f"{a} needs a value\n{__doc__}")
            if a == "--build":
                opts["build"] = value
            else:
                opts["depends"].append(value)
        elif a.startswith("--"):
            sys.exit(f"unknown option {a}\n{__doc__}")
        else:
            rest.append(a)
    return rest, opts


def main(argv):
    argv, opts = options(argv)
    if len(argv) < 3:
        sys.exit(__doc__)
    kind, out = argv[1], argv[2]
    if kind == "channel":
        global SIZE
        SIZE = int(argv[4]) if len(argv) > 4 else 0
        os.makedirs(f"{out}/noarch", exist_ok=True)
        os.makedirs(f"{out}/linux-64", exist_ok=True)
        for i in range(int(argv[3])):
            conda_package(i, f"{out}/noarch")
    elif kind == "wheels":
        os.makedirs(out, exist_ok=True)
        for i in range(int(argv[3])):
            wheel(i, out)
    elif kind == "python":
        for subdir in argv[4:]:
            python_package(argv[3], subdir, f"{out}/{subdir}")
    elif kind == "big":
        big(out, int(argv[3]), int(argv[4]), opts["mpi"])
    elif kind == "from-wheel":
        from_wheel(f"{out}/linux-64", argv[3], argv[4], opts["build"], opts["depends"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
