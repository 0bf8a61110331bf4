#!/usr/bin/env bash
# README's first command, checked end to end: install.sh into a prefix (over what an older
# install.sh left there) with a modulefile for envmod itself, then, in clean shells with each
# real module system, `module load envmod`, `man envmod`, and a first `envmod create` that
# needs no channel.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=/dev/null
source "${ENVMOD_TEST_TOOLS:-$here/.test-tools}/env.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v man >/dev/null 2>&1 || {
  echo "install-check: man not found: apt-get install -y man-db (tests/provision.sh does)" >&2
  exit 1
}

# What an older install.sh left in the prefix: a binary cargo did not install, the page of
# a command that is gone, and a page of another tool, which stays.
mkdir -p "$work/prefix/bin" "$work/prefix/share/man/man1"
printf '#!/bin/sh\necho old envmod\n' > "$work/prefix/bin/envmod"
chmod +x "$work/prefix/bin/envmod"
echo '.TH GONE 1' > "$work/prefix/share/man/man1/envmod-gone.1"
echo '.TH OTHER 1' > "$work/prefix/share/man/man1/other.1"

"$here/install.sh" --prefix "$work/prefix" --modulefile "$work/modules" >/dev/null
test -x "$work/prefix/bin/envmod"
"$work/prefix/bin/envmod" --version | grep -q '^envmod '
test -s "$work/prefix/share/bash-completion/completions/envmod"
test -s "$work/prefix/share/envmod/lmod/SitePackage.lua"
test -s "$work/prefix/share/man/man1/envmod.1"
test -s "$work/prefix/share/man/man1/envmod-create.1"
test ! -e "$work/prefix/share/man/man1/envmod-gone.1"
test -s "$work/prefix/share/man/man1/other.1"

# man finds the installed pages from PATH alone, with nothing loaded.
env -i HOME="$work/home-man" PATH="$work/prefix/bin:/usr/bin:/bin" LANG=C.UTF-8 MANWIDTH=200 \
  bash --norc --noprofile -c "
    set -euo pipefail
    test \"\$(man -w envmod)\" = '$work/prefix/share/man/man1/envmod.1'
    man envmod-create | grep -q -- '--site-python'
  "
echo "install-check: man pages from PATH ok"

check() {
  local name="$1" init="$2"
  env -i HOME="$work/home-$name" PATH=/usr/bin:/bin LANG=C.UTF-8 bash --norc --noprofile -c "
    set -euo pipefail
    source '$init'
    module use '$work/modules'
    module load envmod
    # The pages, and the system's still: MANPATH as the site left it, unset or set.
    test \"\$(man -w envmod)\" = '$work/prefix/share/man/man1/envmod.1'
    MANWIDTH=200 man envmod-create | grep -q -- '--site-python'
    manpath 2>/dev/null | tr : '\\n' | grep -qx /usr/share/man
    (
      export MANPATH=/usr/share/man
      module unload envmod
      module load envmod
      test \"\$(man -w envmod-create)\" = '$work/prefix/share/man/man1/envmod-create.1'
      manpath 2>/dev/null | tr : '\\n' | grep -qx /usr/share/man
      module unload envmod
      test \"\$MANPATH\" = /usr/share/man
    )
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

# The installed Lmod hook, enabled as docs/admin.md says, loads and lets ordinary module
# commands through.
env -i HOME="$work/home-hook" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  LMOD_PACKAGE_PATH="$work/prefix/share/envmod/lmod" bash --norc --noprofile -c "
    set -euo pipefail
    source '$ENVMOD_TEST_LMOD_INIT'
    module use '$work/modules'
    module load envmod
    envmod create -q -n hooked
    module use ~/privatemodules
    module load hooked
    module unload hooked
    \$LMOD_CMD bash --config 2>&1 | grep -q '$work/prefix/share/envmod/lmod'
  "
echo "install-check: lmod hook ok"

# The installed (release) binary must not honour the test hooks: a kill point and a probe
# timeout of 1 ms are ignored, so this create finishes.
env -i HOME="$work/home-hooks" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  ENVMOD_TEST_KILL_AT=create:staged ENVMOD_TEST_TERM_AT=create:staged ENVMOD_TEST_PROBE_TIMEOUT_MS=1 \
  "$work/prefix/bin/envmod" create -q -n hooks --module-system none
test -f "$work/home-hooks/.envmod/envs/hooks/.envmod/manifest.json"
echo "install-check: release binary ignores test hooks ok"
echo "install-check: 5 passed, 0 failed"
