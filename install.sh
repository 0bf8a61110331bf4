#!/usr/bin/env bash
# Build envmod in release mode and install it.
#
#   ./install.sh [--prefix DIR] [--modulefile DIR]
#
#   --prefix DIR       install DIR/bin/envmod, its man pages and shell completions (default: ~/.local)
#   --modulefile DIR   also write DIR/envmod/<version>, a modulefile for envmod itself
#                      (Tcl syntax, which Lmod and Environment Modules both read)
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

prefix="${HOME}/.local"
modulefile_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --modulefile) [ $# -ge 2 ] || { echo "install.sh: --modulefile needs a directory" >&2; exit 2; }; modulefile_dir="$2"; shift 2 ;;
    --modulefile=*) modulefile_dir="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see ./install.sh --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")"
if ! command -v cargo >/dev/null 2>&1; then
  for candidate in "${CARGO_HOME:-$HOME/.cargo}/bin/cargo"; do
    [ -x "$candidate" ] && PATH="$(dirname "$candidate"):$PATH"
  done
fi
command -v cargo >/dev/null 2>&1 || {
  echo "install.sh: cargo not found: install a Rust toolchain (https://rustup.rs) and try again" >&2
  exit 1
}

prefix="$(mkdir -p "$prefix" && cd "$prefix" && pwd)"
echo "==> building and installing ${prefix}/bin/envmod (release)"
# --force: replace an envmod that cargo did not install there (an older install.sh copied it).
cargo install --path . --root "$prefix" --locked --force

# The pages are generated from the command line and committed (share/man/man1), so they need
# no build here. man finds PREFIX/share/man from PATH; a page of a command that is gone goes.
man1="${prefix}/share/man/man1"
install -d "$man1"
for old in "$man1"/envmod.1 "$man1"/envmod-*.1; do
  [ -e "$old" ] || continue
  [ -e "share/man/man1/$(basename "$old")" ] || rm -f "$old"
done
install -m 0644 share/man/man1/*.1 "$man1"

completions="${prefix}/share/bash-completion/completions"
install -d "$completions" "${prefix}/share/zsh/site-functions" "${prefix}/share/fish/vendor_completions.d"
"${prefix}/bin/envmod" completions bash > "${completions}/envmod"
"${prefix}/bin/envmod" completions zsh > "${prefix}/share/zsh/site-functions/_envmod"
"${prefix}/bin/envmod" completions fish > "${prefix}/share/fish/vendor_completions.d/envmod.fish"

# The Lmod hook that keeps a module swap from leaving an environment on another stack; a
# site enables it with LMOD_PACKAGE_PATH (docs/admin.md).
install -d "${prefix}/share/envmod/lmod"
install -m 0644 share/lmod/SitePackage.lua "${prefix}/share/envmod/lmod/SitePackage.lua"

version="$("${prefix}/bin/envmod" --version | awk '{print $2}')"
if [ -n "$modulefile_dir" ]; then
  mkdir -p "${modulefile_dir}/envmod"
  file="$(cd "${modulefile_dir}/envmod" && pwd)/${version}"
  tcl_quote() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/[\\"$[{}]/\\&/g' -e 's/]/\\]/g')"; }
  cat > "${file}.tmp" <<MODULEFILE
#%Module1.0
## envmod/${version}: envmod tool modulefile, written by install.sh
module-whatis "Name: envmod"
module-whatis "Version: ${version}"
module-whatis "Description: create Python environments and load them as modules"
proc ModulesHelp { } {
  puts stderr "envmod ${version}: create Python environments and load them as modules."
  puts stderr "Start with: envmod create -n myenv   (then: envmod --help)"
}
prepend-path PATH $(tcl_quote "${prefix}/bin")
# man finds the pages from PATH while MANPATH is unset; setting it then would hide the
# system's pages, so it is extended only when a site has set it.
if {[info exists ::env(MANPATH)]} {
  prepend-path MANPATH $(tcl_quote "${prefix}/share/man")
}
MODULEFILE
  mv -f "${file}.tmp" "$file"
  echo "==> wrote modulefile ${file}"
fi

echo "==> envmod ${version} installed"
case ":${PATH}:" in
  *":${prefix}/bin:"*) ;;
  *) echo "    add it to PATH: export PATH=\"${prefix}/bin:\$PATH\"" ;;
esac
