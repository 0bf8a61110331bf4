#!/usr/bin/env bash
# README's first command, checked end to end: install.sh into a fresh prefix with a
# modulefile for envmod itself, then, in clean shells with each real module system,
# `module load envmod` and a first `envmod create` that needs no channel.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=/dev/null
source "${ENVMOD_TEST_TOOLS:-$here/.test-tools}/env.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$here/install.sh" --prefix "$work/prefix" --modulefile "$work/modules" >/dev/null
test -x "$work/prefix/bin/envmod"
test -s "$work/prefix/share/bash-completion/completions/envmod"

check() {
  local name="$1" init="$2"
  env -i HOME="$work/home-$name" PATH=/usr/bin:/bin LANG=C.UTF-8 bash --norc --noprofile -c "
    set -euo pipefail
    source '$init'
    module use '$work/modules'
    module load envmod
    envmod create -q -n first
    module use ~/privatemodules
    module load first
    test \"\$(python -c 'import sys; print(sys.prefix)')\" = \"\$HOME/.envmod/envs/first\"
    module unload first
    envmod list | grep -q '^first '
    envmod delete -n first --yes -q
  "
  echo "install-check: $name ok"
}
check lmod "$ENVMOD_TEST_LMOD_INIT"
check modules "$ENVMOD_TEST_MODULES_INIT"
echo "install-check: 2 passed, 0 failed"
