#!/usr/bin/env bash
# Build envmod in release mode and install it.
#
#   ./install.sh [--prefix DIR] [--modulefile DIR]
#
#   --prefix DIR       install DIR/bin/envmod and shell completions (default: ~/.local)
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

echo "==> building envmod (release)"
cargo build --release --locked
# Honour CARGO_TARGET_DIR and cargo config, as clusters often move target/ off $HOME.
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
built="${target_dir:-target}/release/envmod"

prefix="$(mkdir -p "$prefix" && cd "$prefix" && pwd)"
echo "==> installing ${prefix}/bin/envmod"
install -d "${prefix}/bin"
install -m 0755 "$built" "${prefix}/bin/envmod.new"
mv -f "${prefix}/bin/envmod.new" "${prefix}/bin/envmod"

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
MODULEFILE
  mv -f "${file}.tmp" "$file"
  echo "==> wrote modulefile ${file}"
fi

echo "==> envmod ${version} installed"
case ":${PATH}:" in
  *":${prefix}/bin:"*) ;;
  *) echo "    add it to PATH: export PATH=\"${prefix}/bin:\$PATH\"" ;;
esac
