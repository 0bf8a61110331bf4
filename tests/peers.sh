#!/usr/bin/env bash
# Install the real peers that read what envmod writes into a test-only venv, from PyPI:
#   conda-lock  parses envmod's environment.yml
#   py-rattler  reads envmod's lock files and writes locks envmod reads
#   jupyter_client (with ipykernel) starts envmod's kernels
# and downloads ipykernel's wheels into <tools-dir>/wheelhouse, from which the tests install
# ipykernel into environments with no index.
# Idempotent: a venv that already has the pinned versions is left alone.
#
#   tests/peers.sh <tools-dir>      # the venv is <tools-dir>/peers
set -euo pipefail
tools=${1:?usage: tests/peers.sh TOOLS_DIR}
venv="$tools/peers"
pins=(conda-lock==4.0.3 py-rattler==0.28.0 jupyter_client==8.10.0 ipykernel==7.4.0)
stamp="$venv/.envmod-pins"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${pins[*]}" ]; then
    echo "[peers] ${pins[*]}: present"
    exit 0
fi
echo "[peers] installing ${pins[*]} into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
rm -rf "$tools/wheelhouse"
"$venv/bin/pip" download --quiet --disable-pip-version-check -d "$tools/wheelhouse" ipykernel==7.4.0
echo "${pins[*]}" > "$stamp"
