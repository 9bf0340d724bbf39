#!/usr/bin/env bash
# make test: every test, each step's results as TAP in out/results/, then the
# summary whose last line is exactly "N passed, N failed".
#
# Steps: rustfmt; the host unit tests of our plain-core modules (cargo test);
# the Kconfig matrix (x86_64, powerpc); the uAPI layout test;
# the kernel build (clippy on, KUnit built in) and checks on what it contains;
# the userspace build; then, in the VM, the KUnit results and our kselftests;
# then the kernel's own iommufd selftests from the same VM run, against the
# baseline in tools/testing/conformance; then VFIO's no-IOMMU mode in a VM
# without an IOMMU; then DPDK's testpmd (Debian's packages) on e1000 and
# virtio-net-pci through vfio-pci and a VFIO container; last, the Kconfig
# variants of VFIO (no IOMMUFD, group and container, cdev only, both,
# iommufd's compat container), each built without
# the debug options and booted to check its /dev nodes and, with the group
# interface, to run the vfio_group kselftest.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

RES=$OUT/results
rm -rf "$RES"
mkdir -p "$RES"
n=0

# tap_step NAME CMD...: runs CMD, whose stdout is TAP, into results/NN-NAME.tap.
# A command that fails without printing a failing test point adds one, so a
# broken step is never silent.
tap_step() {
	local name=$1; shift
	n=$((n + 1))
	local f=$RES/$(printf '%02d' $n)-$name.tap
	step "test step: $name"
	"$@" >"$f" 2>"$LOGDIR/test-$name.err"
	local rc=$?
	if [ $rc -ne 0 ] && ! grep -q '^\s*not ok' "$f"; then
		echo "not ok - $name: exited $rc (see $LOGDIR/test-$name.err)" >>"$f"
	fi
	grep -E '^\s*not ok' "$f" | head -n 20 | sed 's/^/    /'
	return $rc
}

# check NAME CMD...: one test point for a command's success.
check() {
	local name=$1; shift
	if "$@" >>"$LOGDIR/checks.log" 2>&1; then echo "ok - $name"; else echo "not ok - $name"; fi
}

rustfmt_tap() {
	local cfg=$1 f
	echo "TAP version 13"
	for f in $(cd "$ROOT" && git ls-files '*.rs'); do
		check "rustfmt $f" rustfmt --check --edition 2021 --config-path "$cfg" "$ROOT/$f"
	done
}

src=$(scripts/get-kernel-source.sh | tail -n 1) || { echo "not ok - kernel source" >"$RES/00-source.tap"; src=; }
if [ -n "$src" ]; then
	tap_step rustfmt rustfmt_tap "$src/.rustfmt.toml"
	tap_step host-units "$ROOT/tools/testing/host_units/run.sh"
	tap_step kconfig "$ROOT/tools/testing/kconfig/run.sh" "$src"
	tap_step uapi-layout "$ROOT/tools/testing/uapi_layout/run.sh" "$src"
	tap_step kernel-build "$ROOT/scripts/test-kernel-build.sh" "$src" &&
	tap_step userspace-build check "userspace programs build" "$ROOT/scripts/build-userspace.sh" &&
	{
		"$ROOT/scripts/make-initramfs.sh" "$OUT/initramfs.cpio.gz" "$OUT"/userspace/opt/* >"$LOGDIR/initramfs.log" 2>&1
		tap_step vm "$ROOT/scripts/test-vm.sh" "$OUT/initramfs.cpio.gz"
		tap_step vm-igb "$ROOT/scripts/test-vm-igb.sh" "$OUT/initramfs.cpio.gz"
		tap_step conformance python3 "$ROOT/scripts/conformance-tap.py" \
			"$LOGDIR/vm-tests.console" "$LOGDIR/vm-igb.console" "$ROOT/tools/testing/conformance"
		tap_step noiommu "$ROOT/scripts/test-noiommu.sh" "$OUT/initramfs.cpio.gz"
		tap_step dpdk "$ROOT/scripts/test-dpdk.sh"
	}
	# Independent of the steps above (its own kernels), last so that their results come first.
	tap_step kconfig-variants "$ROOT/scripts/test-kconfig-variants.sh" "$src"
fi

python3 "$ROOT/scripts/tap-summary.py" "$RES"/*.tap
