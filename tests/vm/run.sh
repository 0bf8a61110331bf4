#!/usr/bin/env bash
# Run SCRIPT as root in a virtual machine that boots Debian's kernel and sees this machine's
# root filesystem read-only (9p), with a fresh tmpfs on /tmp and /run. For what this machine's
# own kernel cannot do: it is built without disk quotas (CONFIG_QUOTA), which the doctor test
# needs on a real filesystem.
#
#   bash tests/vm/run.sh SCRIPT [FILE...]
#
# Each FILE (the envmod binary under test, say) is shown to SCRIPT read-only as
# /run/envmod-vm/NAME, NAME its base name: the VM's fresh /tmp and /run hide whatever this
# machine has there, and a checkout in /tmp (with its target dir) is common.
# SCRIPT's output is printed between the lines `envmod-vm-begin` and `envmod-vm-end`, then
# `envmod-vm-exit=N`; this script exits with N. Needs (tests/provision.sh installs them):
#   apt-get install qemu-system-x86 linux-image-amd64 busybox-static
# The VM runs under qemu's TCG: nested KVM is not reliable on cloud machines (a Debian
# kernel hangs at boot under KVM on this project's CI machines). ENVMOD_TEST_VM_ACCEL=kvm
# overrides that.
set -euo pipefail
die() { echo "tests/vm/run.sh: error: $*" >&2; exit 2; }
[[ $# -ge 1 && -r $1 ]] || die "usage: tests/vm/run.sh SCRIPT [FILE...]"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
    die "a static busybox is missing at $BUSYBOX: apt-get install busybox-static"
KV=""
for k in /boot/vmlinuz-*; do
    v=${k#/boot/vmlinuz-}
    [[ -e /lib/modules/$v/kernel/fs/9p/9p.ko && -r $k ]] && KV=$v
done
[[ -n $KV ]] || die "no kernel with 9p modules in /boot: apt-get install linux-image-amd64"

W=$(mktemp -d "${TMPDIR:-/tmp}/envmod-vm.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/initramfs"/{bin,mods,proc,dev,sys,host}
cp "$BUSYBOX" "$W/initramfs/bin/busybox"
cp "$1" "$W/initramfs/vmscript"
shift
# A second 9p share rather than the initramfs: a debug envmod is hundreds of MB. A hard link
# costs nothing on the same filesystem; a copy elsewhere.
mkdir -m 755 "$W/files"
for f in "$@"; do
    [[ -f $f && -r $f ]] || die "not a readable file: $f"
    dest="$W/files/$(basename -- "$f")"
    [[ ! -e $dest ]] || die "two files named $(basename -- "$f")"
    ln -- "$f" "$dest" 2>/dev/null || cp -p -- "$f" "$dest" || die "cannot copy $f into $W/files"
done
# Virtio and 9p to reach the host's files; loop, ext4 and the quota format for the test.
n=0
for m in virtio_pci 9pnet_virtio 9p loop ext4 quota_v2; do
    modprobe --show-depends -S "$KV" "$m" || die "module $m not found for kernel $KV"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
    n=$((n + 1))
    cp "$ko" "$W/initramfs/mods/$(printf %02d "$n")-$(basename "$ko")"
done

cat >"$W/initramfs/init" <<'INIT'
#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for ko in /mods/*.ko; do $bb insmod "$ko" || echo "envmod-vm: insmod $ko failed"; done
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /host || echo "envmod-vm: 9p mount failed"
$bb mount -t proc proc /host/proc
$bb mount -t devtmpfs dev /host/dev
$bb mount -t sysfs sys /host/sys
$bb mount -t tmpfs tmp /host/tmp
$bb mount -t tmpfs run /host/run
$bb mkdir -p /host/run/envmod-vm
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 vmfiles /host/run/envmod-vm || echo "envmod-vm: 9p mount of the files failed"
$bb cp /vmscript /host/tmp/vmscript
echo envmod-vm-begin
$bb chroot /host /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 /bin/bash /tmp/vmscript </dev/null 2>&1
rc=$?
echo "envmod-vm-end"
echo "envmod-vm-exit=$rc"
$bb poweroff -f
INIT
chmod 755 "$W/initramfs/init"
(cd "$W/initramfs" && find . | cpio -o -H newc --quiet) | gzip -1 >"$W/initrd"

accel=${ENVMOD_TEST_VM_ACCEL:-tcg}
cpu=max
[[ $accel == tcg ]] || cpu=host
timeout 600 qemu-system-x86_64 -machine "q35,accel=$accel" -cpu "$cpu" -m 1024 -smp 2 \
    -nographic -no-reboot -nodefaults -serial stdio -display none \
    -kernel "/boot/vmlinuz-$KV" -initrd "$W/initrd" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$W/files",mount_tag=vmfiles,security_model=none,readonly=on \
    </dev/null >"$W/console" 2>"$W/qemu.err" || true
# The firmware's escape sequences share the first line.
tr -d '\r' <"$W/console" | sed -n 's/.*\(envmod-vm-begin\)$/\1/; /^envmod-vm-begin$/,/^envmod-vm-exit=/p'
code=$(tr -d '\r' <"$W/console" | sed -n 's/^envmod-vm-exit=\([0-9]*\)$/\1/p' | tail -1)
if [[ -z $code ]]; then
    echo "tests/vm/run.sh: the VM did not finish; console and qemu said:" >&2
    tr -d '\r' <"$W/console" | tail -n 30 >&2
    tail -n 10 "$W/qemu.err" >&2
    exit 2
fi
exit "$code"
