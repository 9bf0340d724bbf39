#!/usr/bin/env bash
# Test step: the kernel's own vfio selftests on an Intel 82576 (QEMU's igb),
# which edu cannot stand in for: vfio_pci_driver_test drives it through
# upstream's selftest igb driver (DMA copies in loopback, MSI-X), and it has
# the MSI-X that vfio_pci_device_test's msix case needs. QEMU 7.2 has no igb,
# so this VM runs QEMU 10 (scripts/get-qemu10.sh), the igb alone behind a PCIe
# root port, the same kernel and initramfs, and the "igb" task: first the
# conformance task with vmconfdev=8086:10c9 (only the vfio programs, their
# sections named PROGRAM@igb, which scripts/conformance-tap.py reads from the
# console log next to the main VM's), then our vfio_sriov selftest, which
# needs the igb's SR-IOV (vfio-pci enabling VFs, the VF token). Prints, as TAP,
# a point for QEMU, vfio_sriov's output and a point for the run.
# Usage: test-vm-igb.sh INITRAMFS
set -uo pipefail
. "$(dirname "$0")/lib.sh"

console=$LOGDIR/vm-igb.console
echo "TAP version 13"
if ! qemu=$("$ROOT/scripts/get-qemu10.sh" 2>"$LOGDIR/get-qemu10.log" | tail -n 1) || [ ! -x "$qemu" ]; then
	echo "not ok - QEMU 10 from bookworm-backports (see $LOGDIR/get-qemu10.log)"
	: >"$console"
	exit 0
fi
echo "ok - QEMU 10 from bookworm-backports: $qemu"
share=$(dirname "$(dirname "$qemu")")/share/qemu
# An expansion ROM for the igb (QEMU's igb has none), for vfio_igb's ROM test:
# one 2 KiB image (55 AA, a far return as its init entry, a PCIR structure
# naming 8086:10c9, a byte pattern from 0x40, a zero checksum) in a 4 KiB file,
# so a 4 KiB ROM BAR whose second half is past the image.
rom=$OUT/igb-rom.bin
python3 - "$rom" <<'PY'
import struct, sys
img = bytearray(2048)
img[0:4] = b"\x55\xaa\x04\xcb"
img[0x18:0x1a] = struct.pack("<H", 0x1c)
img[0x1c:0x34] = b"PCIR" + struct.pack("<HHHHB3sHHBBH", 0x8086, 0x10c9, 0, 0x18, 0,
                                        b"\x00\x00\x02", 4, 0, 0, 0x80, 0)
for i in range(0x40, 0x7ff):
    img[i] = (i * 7 + 3) & 0xff
img[0x7ff] = -sum(img) & 0xff
open(sys.argv[1], "wb").write(bytes(img) + bytes(2048))
PY
# As the main VM: 4 GiB, one 1 GiB hugetlb page for vfio_dma_mapping_test.
run_igb_vm() {
	"$ROOT/scripts/run-vm.sh" --qemu "$qemu" --qemu-arg -L --qemu-arg "$share" \
		--qemu-arg -m --qemu-arg 4G \
		--qemu-arg -device --qemu-arg pcie-root-port,id=rp1,chassis=2,slot=2 \
		--qemu-arg -device --qemu-arg "igb,bus=rp1,romfile=$rom" \
		--append "hugepagesz=1G hugepages=1 vmconfdev=8086:10c9 vmconfname=igb" \
		--task igb --timeout "${VM_IGB_TIMEOUT:-900}" "$1" >"$console" 2>&1
}
run_igb_vm "$1"
rc=$?
# A run takes about 6 minutes. Once, on a loaded machine, QEMU 10's second vCPU
# stopped taking timer interrupts (RCU stalls, then the timeout): a VM that
# stops or times out gets one more run, said here; a hang of ours would
# happen again. A splat or a failing case is never run again.
if [ $rc = 4 ] || [ $rc = 5 ]; then
	cp "$console" "$console.first"
	echo "# igb VM: the first run stopped or timed out (exit $rc, console in $console.first); ran again"
	run_igb_vm "$1"
	rc=$?
fi
tr -d '\r' <"$console" | sed -n '/^### SELFTEST /,/^### END/p' | grep -v '^###'
case $rc in
0) echo "ok - igb VM ran the vfio selftests with no kernel splat" ;;
3) echo "not ok - igb VM: kernel splat (see $console)"
   tr -d '\r' <"$console" | sed -n '/splat/,$p' | tail -n 40 | sed 's/^/# /' ;;
4) echo "not ok - igb VM: stopped without finishing the task (see $console)" ;;
5) echo "not ok - igb VM: timed out (see $console)" ;;
*) echo "not ok - igb VM: the igb task exited $rc (see $console)" ;;
esac
exit 0
