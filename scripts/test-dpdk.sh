#!/usr/bin/env bash
# Test step: DPDK's testpmd (Debian 12's DPDK 22.11, packed by
# scripts/build-dpdk.sh) in the VM on QEMU's e1000 (82540EM, conventional PCI,
# INTx) and virtio-net-pci, each bound to vfio-pci and driven through a VFIO
# type1 container, DPDK's default (the "dpdk" VM task).  Each NIC sits on a
# UDP socket netdev that sends to its own address, so what the port transmits
# comes back to it: testpmd sends a first burst and forwards it round and
# round.  Prints the task's TAP (probe through VFIO, port started, packets
# transmitted and received, clean exit, per NIC) and one point for the VM run
# (no kernel splat).
# Usage: test-dpdk.sh, with KERNEL= another bzImage than the test kernel's,
# DPDK_APPEND= more kernel command line (dpdk_debug=1: DPDK's debug logs;
# dpdk_seconds=N: how long each testpmd forwards; dpdk_preload=PATH: a
# library the loader preloads into testpmd), DPDK_EXTRA_DIRS= more
# directories for the initramfs (each at /opt/<name>).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

KERNEL=${KERNEL:-$OUT/build/arch/x86/boot/bzImage}
console=$LOGDIR/vm-dpdk.console
echo "TAP version 13"
if ! dpdk=$("$ROOT/scripts/build-dpdk.sh" 2>"$LOGDIR/build-dpdk.err" | tail -n 1) || [ ! -d "$dpdk" ]; then
	echo "not ok - DPDK fetched from Debian's packages and packed (see $LOGDIR/build-dpdk.err)"
	exit 0
fi
echo "ok - DPDK fetched from Debian's packages and packed"

# The initramfs: busybox, the task and /opt/dpdk.
tasks=$OUT/dpdk/opt/tasks
mkdir -p "$tasks"
install -m 755 "$ROOT/scripts/vm-tasks/dpdk" "$tasks/dpdk"
initramfs=$OUT/dpdk/initramfs.cpio.gz
if ! "$ROOT/scripts/make-initramfs.sh" "$initramfs" "$tasks" "$dpdk" ${DPDK_EXTRA_DIRS:-} >"$LOGDIR/initramfs-dpdk.log" 2>&1; then
	echo "not ok - DPDK initramfs (see $LOGDIR/initramfs-dpdk.log)"
	exit 0
fi

# Two free UDP ports on the loopback, one per NIC.
read -r p0 p1 < <(python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
# romfile= : no option ROM (QEMU's ipxe ROMs need not be installed).
nics=(-netdev "socket,id=n0,udp=127.0.0.1:$p0,localaddr=127.0.0.1:$p0"
	-device "e1000,netdev=n0,romfile="
	-netdev "socket,id=n1,udp=127.0.0.1:$p1,localaddr=127.0.0.1:$p1"
	-device "virtio-net-pci,netdev=n1,romfile=,disable-legacy=on,iommu_platform=on")
qargs=()
for a in "${nics[@]}"; do qargs+=(--qemu-arg "$a"); done
"$ROOT/scripts/run-vm.sh" --task dpdk --timeout "${VM_DPDK_TIMEOUT:-600}" \
	${DPDK_APPEND:+--append "$DPDK_APPEND"} "${qargs[@]}" "$initramfs" "$KERNEL" >"$console" 2>&1
rc=$?
out=$(tr -d '\r' <"$console" | sed -n '/^### DPDK/,/^### END/p' | grep -v '^###')
printf '%s\n' "$out" | grep -E '^(not )?ok ' || echo "not ok - the dpdk task printed no results (see $console)"
case $rc in
0) echo "ok - DPDK VM ran with no kernel splat" ;;
3) echo "not ok - DPDK VM: kernel splat (see $console)"
   tr -d '\r' <"$console" | sed -n '/splats on the console/,$p' | head -n 40 | sed 's/^/# /' ;;
4) echo "not ok - DPDK VM: stopped without finishing the task (see $console)" ;;
5) echo "not ok - DPDK VM: timed out (see $console)" ;;
*) echo "not ok - DPDK VM: the task exited $rc (see $console)" ;;
esac
exit 0
