#!/usr/bin/env bash
# Test step: boots the test kernel in a VM without an IOMMU (run-vm.sh
# --no-iommu) with the "noiommu" task, and prints as TAP the results of
# vfio_noiommu (VFIO's no-IOMMU mode on the edu device), plus one point for
# the VM run itself and one that the tests ran rather than skipped.
# Usage: test-noiommu.sh INITRAMFS
set -uo pipefail
. "$(dirname "$0")/lib.sh"

console=$LOGDIR/vm-noiommu.console
"$ROOT/scripts/run-vm.sh" --no-iommu --task noiommu --timeout "${VM_TEST_TIMEOUT:-600}" "$1" >"$console" 2>&1
rc=$?
echo "TAP version 13"
out=$(tr -d '\r' <"$console" | sed -n '/^### NOIOMMU/,/^### END/p' | grep -v '^###')
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -qE '^ok [0-9]+ ' && ! printf '%s\n' "$out" | grep -qE '^ok [0-9]+ .*# SKIP'; then
	echo "ok - vfio_noiommu ran without skipping"
else
	echo "not ok - vfio_noiommu ran without skipping"
fi
case $rc in
0) echo "ok - no-IOMMU VM ran with no kernel splat" ;;
3) echo "not ok - no-IOMMU VM: kernel splat (see $console)" ;;
*) echo "not ok - no-IOMMU VM: exited $rc (see $console)" ;;
esac
exit 0
