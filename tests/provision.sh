#!/usr/bin/env bash
# Provision the two real module systems used by envmod's integration tests
# on a Debian 12 (bookworm) machine:
#   * Environment Modules 5.x  (apt package environment-modules)
#   * Lmod 8.x                 (Debian's lmod .deb, unpacked into a private
#                               tools dir because it conflicts with
#                               environment-modules)
# and the site software the modules of the tests stand for:
#   * Debian's Open MPI 4.1.4  (openmpi-bin libopenmpi-dev; the test module openmpi/4.1.4)
#   * Debian's numpy 1.24.2    (python3-numpy, under /usr/bin/python3.11, the site Python)
#   * a C compiler             (gcc; the test channel builds its conda MPI libraries with it)
#   * man-db                   (tests/install-check.sh reads the installed man pages with man)
# Writes <tools>/env.sh exporting ENVMOD_TEST_LMOD_INIT / ENVMOD_TEST_MODULES_INIT.
# Idempotent; a second run installs nothing.
#
#   tests/provision.sh                    # tools in <repo>/.test-tools
#   ENVMOD_TEST_TOOLS=/opt/t tests/provision.sh
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
tools=${ENVMOD_TEST_TOOLS:-$repo_root/.test-tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd -P)
case $tools in *[[:space:]]*) echo "[provision] ERROR: tools dir must not contain whitespace: $tools" >&2; exit 1;; esac

step() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive

is_root=false
[ "$(id -u)" = 0 ] && is_root=true

apt_updated=false
apt_update() {
    if ! $apt_updated; then
        step "apt-get update"
        apt-get update -qq >/dev/null
        apt_updated=true
    fi
}

# ---------------------------------------------------------------- apt packages
# quota, and a VM to use it in (tests/vm/run.sh): this machine's kernel has no disk quotas.
# mpirun needs an ssh (or rsh) client on PATH even to start ranks on this machine only.
pkgs=(environment-modules tcl lua5.3 lua-posix lua-filesystem lua-json lua-term zsh fish
      python3 python3-venv python3-pip ca-certificates quota
      qemu-system-x86 linux-image-amd64 busybox-static
      openmpi-bin libopenmpi-dev openssh-client python3-numpy gcc libc6-dev man-db)
missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    step "apt packages: all present"
else
    $is_root || die "missing packages, run as root: apt-get install -y ${missing[*]}"
    apt_update
    step "apt-get install ${missing[*]}"
    log=$(mktemp)
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        tail -n 20 "$log" >&2; rm -f "$log"; die "apt-get install failed"
    fi
    rm -f "$log"
fi

command -v mpirun >/dev/null || die "mpirun missing: apt-get install -y openmpi-bin libopenmpi-dev"
/usr/bin/python3.11 -c 'import numpy' 2>/dev/null \
    || die "numpy missing under /usr/bin/python3.11: apt-get install -y python3-numpy"

modules_init=/usr/share/modules/init/bash
[ -r "$modules_init" ] || die "$modules_init not found (is environment-modules installed?)"

# ------------------------------------------------------------------------ Lmod
# Unpack lmod_*.deb into $tools/lmod and rewrite its absolute paths
# (/usr/share/lmod, /usr/lib/lmod, /etc/lmod, /etc/lmodrc.lua) to point there.
lmod_root=$tools/lmod
lmod_init=$lmod_root/usr/share/lmod/lmod/init/bash
stamp=$lmod_root/.envmod-provisioned
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lmod_root" ] && [ -r "$lmod_init" ]; then
    step "lmod: already unpacked in $lmod_root"
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    chmod 755 "$tmp"
    if $is_root; then chown _apt "$tmp" 2>/dev/null || true; fi   # avoids apt's sandbox warning
    if ! apt-cache show lmod >/dev/null 2>&1; then
        $is_root || die "apt has no 'lmod' package info, run as root: apt-get update"
        apt_update
    fi
    step "apt-get download lmod"
    (cd "$tmp" && apt-get download -qq lmod >/dev/null 2>&1) \
        || { apt_update; (cd "$tmp" && apt-get download -qq lmod >/dev/null); }
    deb=$(ls "$tmp"/lmod_*.deb)
    step "unpack $(basename "$deb") -> $lmod_root"
    rm -rf "$lmod_root"
    mkdir -p "$lmod_root"
    dpkg-deb -x "$deb" "$lmod_root"
    step "rewrite /usr/share/lmod, /usr/lib/lmod, /etc/lmod paths"
    # One pass, with a look-behind so already-prefixed paths are never touched.
    grep -rlIE '/usr/share/lmod|/usr/lib/lmod|/etc/lmod' "$lmod_root" | while IFS= read -r f; do
        [ -L "$f" ] && continue
        ENVMOD_LMOD_ROOT=$lmod_root perl -pi -e \
            's{(?<![\w./-])(/usr/share/lmod|/usr/lib/lmod|/etc/lmod)}{$ENV{ENVMOD_LMOD_ROOT}$1}g' "$f"
    done
    # lmod's shebang is #!/usr/bin/lua5.3 (from the lua5.3 package); check it.
    head -1 "$lmod_root/usr/share/lmod/lmod/libexec/lmod" | grep -q '^#!/usr/bin/lua5.3' \
        || die "unexpected interpreter in lmod: $(head -1 "$lmod_root/usr/share/lmod/lmod/libexec/lmod")"
    [ -x /usr/bin/lua5.3 ] || die "/usr/bin/lua5.3 missing: apt-get install -y lua5.3"
    [ -r "$lmod_init" ] || die "$lmod_init not found after unpacking"
    printf '%s\n' "$lmod_root" >"$stamp"
fi

# ------------------------------------------------------------------ accounts
# Real accounts for the tests about other users: envmod-instructor and envmod-peer are in
# the group envmodtest (an instructor and a TA of a course, or colleagues in a shared
# directory), envmod-other is not (a student).
ensure_account() {  # $1 = user, $2 = supplementary group or ""
    if ! id "$1" >/dev/null 2>&1; then
        $is_root || die "account $1 missing, run as root: useradd -M -s /bin/bash ${2:+-G $2 }$1"
        useradd -M -s /bin/bash ${2:+-G "$2"} "$1" || die "useradd $1 failed"
        step "created account $1${2:+ (group $2)}"
    fi
}
if ! getent group envmodtest >/dev/null; then
    $is_root || die "group envmodtest missing, run as root: groupadd envmodtest"
    groupadd envmodtest || die "groupadd envmodtest failed"
fi
ensure_account envmod-instructor envmodtest
ensure_account envmod-peer envmodtest
ensure_account envmod-other ""
command -v runuser >/dev/null || die "runuser missing (package util-linux)"
command -v script >/dev/null || die "script missing (package bsdutils)"

# --------------------------------------------------------------------- env.sh
envsh=$tools/env.sh
new_env=$(printf '# generated by tests/provision.sh\nexport ENVMOD_TEST_LMOD_INIT=%q\nexport ENVMOD_TEST_MODULES_INIT=%q\n' \
    "$lmod_init" "$modules_init")
if [ -f "$envsh" ] && [ "$(cat "$envsh")" = "$new_env" ]; then
    step "env.sh: up to date ($envsh)"
else
    printf '%s\n' "$new_env" >"$envsh"
    step "wrote $envsh"
fi

# ------------------------------------------------------------------- versions
# Separate clean shells: the two systems share LOADEDMODULES/_LMFILES_.
ver() {  # $1 = init file
    # shellcheck disable=SC2016  # $1 expands in the child shell
    env -i HOME="${HOME:-/root}" PATH=/usr/bin:/bin bash --norc -c \
        'source "$1" && module --version' _ "$1" 2>&1 \
        | sed -nE 's/.*(Modules Release|Lua: Version) ([0-9][^ ]*).*/\2/p' | head -n1
}
v_mod=$(ver "$modules_init"); [ -n "$v_mod" ] || die "Environment Modules does not run ($modules_init)"
v_lmod=$(ver "$lmod_init");   [ -n "$v_lmod" ] || die "Lmod does not run ($lmod_init)"
step "Environment Modules $v_mod: $modules_init"
step "Lmod $v_lmod: $lmod_init"
step "$(ompi_info --version 2>/dev/null | head -n1): $(command -v mpirun)"
step "numpy $(/usr/bin/python3.11 -c 'import numpy; print(numpy.__version__)') under /usr/bin/python3.11"
