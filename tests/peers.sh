#!/usr/bin/env bash
# Install the real peers that read what envmod writes into a test-only venv, from PyPI:
#   conda-lock  parses envmod's environment.yml
#   py-rattler  reads envmod's lock files and writes locks envmod reads
#   jupyter_client (with ipykernel) starts envmod's kernels
# and downloads ipykernel's wheels into <tools-dir>/wheelhouse, from which the tests install
# ipykernel into environments with no index, and the wheels pinned in tests/wheels.txt (the
# real mpi4py) into <tools-dir>/wheels, which the tests repackage as conda packages.
# Idempotent: a venv that already has the pinned versions, and wheels whose sha256 matches
# their pin, are left alone.
#
#   tests/peers.sh <tools-dir>      # the venv is <tools-dir>/peers
set -euo pipefail
tools=${1:?usage: tests/peers.sh TOOLS_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$tools/peers"
pins=(conda-lock==4.0.3 py-rattler==0.28.0 jupyter_client==8.10.0 ipykernel==7.4.0)
stamp="$venv/.envmod-pins"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${pins[*]}" ]; then
    echo "[peers] ${pins[*]}: present"
else
    echo "[peers] installing ${pins[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
    rm -rf "$tools/wheelhouse"
    "$venv/bin/pip" download --quiet --disable-pip-version-check -d "$tools/wheelhouse" ipykernel==7.4.0
    echo "${pins[*]}" > "$stamp"
fi

# One wheel per line of tests/wheels.txt (`name==version --hash=sha256:HEX`), for CPython 3.11
# on x86_64 Linux (the site Python the tests build on), checked by pip against the pin.
wheels="$tools/wheels"
mkdir -p "$wheels"
while IFS= read -r line; do
    case $line in ''|'#'*) continue;; esac
    req=${line%% *}
    name=${req%%==*}; version=${req#*==}
    sha=${line##*--hash=sha256:}
    have=""
    for f in "$wheels/${name//-/_}-$version-"*.whl; do
        [ -f "$f" ] || continue
        if [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ]; then have=$f; break; fi
    done
    if [ -n "$have" ]; then
        echo "[peers] $(basename "$have"): present"
        continue
    fi
    echo "[peers] downloading $req (sha256 $sha) into $wheels"
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: --python-version 3.11 --implementation cp --abi cp311 \
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
        --require-hashes -d "$wheels" -r <(printf '%s\n' "$line") \
        || { echo "[peers] ERROR: pip could not download $req with sha256 $sha (see $here/wheels.txt)" >&2; exit 1; }
done < "$here/wheels.txt"
