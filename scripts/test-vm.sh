#!/usr/bin/env bash
# Test step: boots the test kernel with the "tests" task and prints, as TAP,
# the KUnit results (run at boot) and every kselftest's output, plus one point
# for the VM run itself (which fails on a timeout, a missing exit marker or any
# kernel splat: KASAN, lockdep, kmemleak, WARN, BUG).  The upstream selftests'
# sections (### CONFORMANCE ...) are left out: the next step,
# scripts/conformance-tap.py, reads them from the same console log.
# Usage: test-vm.sh INITRAMFS
set -uo pipefail
. "$(dirname "$0")/lib.sh"

console=$LOGDIR/vm-tests.console
# 4 GiB, one of them a 1 GiB hugetlb page reserved at boot (above 4G, where q35
# puts RAM past 2 GiB): upstream's vfio_dma_mapping_test maps one and checks
# that VT-d holds it as a single PUD entry.
"$ROOT/scripts/run-vm.sh" --task tests --timeout "${VM_TEST_TIMEOUT:-2400}" \
	--qemu-arg -m --qemu-arg 4G --append "hugepagesz=1G hugepages=1" "$1" >"$console" 2>&1
rc=$?
echo "TAP version 13"
tr -d '\r' <"$console" | sed -n '/^### KUNIT/,/^### END/p' |
	sed '/^### CONFORMANCE /,/^### CONFORMANCE-END /d' | grep -v '^###'
# Our KUnit suites must have run: a kernel without them would otherwise pass silently.
for suite in rust_iommufd_object rust_iommufd_range_map rust_iommufd_io_pagetable \
	rust_iommufd_domain rust_iommufd_mock_domain rust_iommufd_mock_nested \
	rust_iommufd_fault rust_iommufd_veventq rust_iova_bitmap rust_iommu_paging \
	rust_iommufd_hw_domain; do
	if grep -qE "# Subtest: $suite"$'\r?$' "$console"; then echo "ok - KUnit suite $suite ran"
	else echo "not ok - KUnit suite $suite ran"; fi
done
case $rc in
0) echo "ok - VM ran the tests with no kernel splat" ;;
3) echo "not ok - VM: kernel splat (KASAN, lockdep, kmemleak, WARN or BUG; see $console)"
   tr -d '\r' <"$console" | sed -n '/splat/,$p' | tail -n 40 | sed 's/^/# /' ;;
4) echo "not ok - VM: stopped without finishing the task (see $console)" ;;
5) echo "not ok - VM: timed out (see $console)" ;;
*) echo "not ok - VM: the tests task exited $rc (see $console)" ;;
esac
exit 0
