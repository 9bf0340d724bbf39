#!/usr/bin/env bash
# Test step: the Kconfig variants of VFIO build and boot.  For each variant,
# builds a kernel from scripts/kernel-base.config (boot, PCI, VT-d, KVM, Rust;
# none of the debug options of scripts/kernel.config, so that it builds fast)
# and the variant's own options, checks that the .config has them, boots it in
# the VM with the task kconfig-variant (scripts/vm-tasks/kconfig-variant) and
# prints, as TAP, what the kernel offers: /dev/iommu, /dev/vfio/vfio,
# /dev/vfio/devices and the group node of QEMU's edu device bound to vfio-test;
# with the group interface, the vfio_group kselftest (when build-userspace.sh
# built it) runs the group and container ioctls on edu, and in every variant the
# vfio_pci kselftest drives edu through vfio-pci by the ways in it has.
#
# Every variant has VFIO, VFIO_PCI, VFIO_TEST_DRIVER and DEBUG_KERNEL, and all
# but no-iommufd have IOMMUFD:
#   no-iommufd       no IOMMUFD (no /dev/iommu), hence VFIO_GROUP and
#                    VFIO_CONTAINER forced on, the container on the engine
#                    alone (IOMMUFD_ENGINE)
#   group-container  VFIO_GROUP, VFIO_CONTAINER, no VFIO_DEVICE_CDEV
#   cdev             VFIO_DEVICE_CDEV only (no group, hence no container)
#   both             VFIO_GROUP, VFIO_CONTAINER and VFIO_DEVICE_CDEV
#   compat           VFIO_GROUP, iommufd's container (IOMMUFD_VFIO_CONTAINER)
#                    in place of VFIO's, VFIO_DEVICE_CDEV
# While vfio/Kconfig makes VFIO_TEST_DRIVER depend on VFIO_DEVICE_CDEV, the
# group-container variant goes without it and skips the checks that need it.
#
# The variants are built one after the other in one build directory,
# out/variants/build: the first builds everything, each next one is configured
# anew and Kbuild rebuilds what its options change (the objects that test
# those CONFIG_ symbols, vfio_main.o and kvm's vfio.o today, and the link),
# which takes a minute or two instead of a full build each.  Our Rust objects
# are always rebuilt, so that each variant's log has their warnings.  Each
# variant keeps its .config, bzImage and logs in out/variants/NAME.
#
# Usage: test-kconfig-variants.sh [PRISTINE_TREE]
# With PRISTINE_TREE, lays the project into out/linux first (prepare-tree.sh);
# without, out/linux must be prepared (make tree).
# KCONFIG_VARIANTS="NAME..." picks variants; VARIANT_VM_TIMEOUT (default 300 s)
# limits each boot.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

VOUT=$OUT/variants
TREE=$OUT/linux
VARIANTS=${KCONFIG_VARIANTS:-no-iommufd group-container cdev both compat}
mkdir -p "$VOUT"
echo "TAP version 13"

if [ $# -ge 1 ] && ! "$ROOT/scripts/prepare-tree.sh" "$1" >&2; then
	echo "not ok - project laid into the kernel tree"
	exit 1
fi
[ -f "$TREE/Makefile" ] || { echo "not ok - a prepared tree at $TREE (make tree)"; exit 1; }

# Whether vfio-test can be built without the cdev: its Kconfig entry decides.
testdrv_needs_cdev=0
sed -n '/^config VFIO_TEST_DRIVER$/,/^\(config\|menu\|endmenu\|endif\)/p' "$ROOT/vfio/Kconfig" |
	grep -q '^\s*depends on.*VFIO_DEVICE_CDEV' && testdrv_needs_cdev=1

# variant NAME: sets iommufd (0/1), group (0/1), container (none/native/compat),
# cdev (0/1).
variant() {
	iommufd=1
	case $1 in
	no-iommufd) iommufd=0 group=1 container=native cdev=0 ;;
	group-container) group=1 container=native cdev=0 ;;
	cdev) group=0 container=none cdev=1 ;;
	both) group=1 container=native cdev=1 ;;
	compat) group=1 container=compat cdev=1 ;;
	*) return 1 ;;
	esac
}
yn() { if [ "$1" = 1 ]; then echo y; else echo n; fi; }
# cpu_now: sets cpu to the CPU seconds (user + system) of the processes this
# script waited for so far; with other builds on the machine, the wall time
# says little.  (`times` must run in this shell: a subshell has no children.)
cpu_now() {
	times >"$VOUT/.times"
	cpu=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } printf "%d", s }' "$VOUT/.times")
}

# The initramfs: busybox, the task and, if built, the vfio_group and vfio_pci
# kselftests.
rm -rf "$VOUT/tasks" "$VOUT/selftests"
mkdir -p "$VOUT/tasks"
install -m 755 "$ROOT/scripts/vm-tasks/kconfig-variant" "$VOUT/tasks/kconfig-variant"
extra=()
for kst in vfio_group vfio_pci; do
	[ -x "$OUT/userspace/opt/selftests/$kst" ] || continue
	mkdir -p "$VOUT/selftests"
	cp "$OUT/userspace/opt/selftests/$kst" "$VOUT/selftests/"
	extra=("$VOUT/selftests")
done
initramfs=$VOUT/initramfs.cpio.gz
if ! "$ROOT/scripts/make-initramfs.sh" "$initramfs" "$VOUT/tasks" "${extra[@]}" >&2; then
	echo "not ok - the variants' initramfs (scripts/make-initramfs.sh)"
	exit 1
fi

build=$VOUT/build
times=()
t_all=$SECONDS
for name in $VARIANTS; do
	variant "$name" || { echo "not ok - variant $name: no such variant"; continue; }
	dir=$VOUT/$name
	mkdir -p "$dir"
	testdrv=1 testdrv_why=
	if [ $cdev = 0 ] && [ $testdrv_needs_cdev = 1 ]; then
		testdrv=0 testdrv_why="VFIO_TEST_DRIVER depends on VFIO_DEVICE_CDEV (vfio/Kconfig)"
		testdrv_why=${testdrv_why// /\~}
	fi

	# The variant's fragment, merged after the base one.
	frag=$dir/variant.config
	{
		echo "# scripts/test-kconfig-variants.sh, variant $name: merged after scripts/kernel-base.config"
		echo "CONFIG_DEBUG_KERNEL=y"
		echo "CONFIG_IOMMUFD=$(yn $iommufd)"
		echo "CONFIG_VFIO=y"
		echo "CONFIG_VFIO_GROUP=$(yn $group)"
		echo "CONFIG_VFIO_CONTAINER=$([ $container = native ] && echo y || echo n)"
		echo "CONFIG_IOMMUFD_VFIO_CONTAINER=$([ $container = compat ] && echo y || echo n)"
		echo "CONFIG_VFIO_DEVICE_CDEV=$(yn $cdev)"
		echo "CONFIG_VFIO_PCI=y"
		echo "CONFIG_VFIO_TEST_DRIVER=$(yn $testdrv)"
		# A task blocked in the kernel is reported (a splat) instead of a silent timeout.
		echo "CONFIG_DETECT_HUNG_TASK=y"
		echo "CONFIG_DEFAULT_HUNG_TASK_TIMEOUT=30"
	} >"$frag"

	# Build: our objects are rebuilt every time, so that their warnings are in this log.
	rm -f "$build"/drivers/iommu/iommufd/*.o "$build"/drivers/vfio/*.o "$build"/drivers/vfio/*/*.o \
		"$dir/bzImage" "$dir/config" 2>/dev/null
	step "variant $name: building in $build" >&2
	cpu_now
	t0=$SECONDS c0=$cpu
	OUT=$dir TREE=$TREE BUILD=$build FRAGMENT="$ROOT/scripts/kernel-base.config $frag" KTARGETS=bzImage \
		"$ROOT/scripts/build-kernel.sh" >&2
	brc=$?
	cpu_now
	t_build=$((SECONDS - t0)) c_build=$((cpu - c0))
	[ ! -f "$build/.config" ] || cp "$build/.config" "$dir/config"
	[ $brc != 0 ] || cp "$build/arch/x86/boot/bzImage" "$dir/bzImage" || brc=1

	# The .config has what the variant asks (build-kernel.sh stops on a mismatch too).
	wrong=
	while read -r line; do
		opt=${line%%=*}
		got=$(grep -E "^$opt=" "$dir/config" 2>/dev/null || true)
		case $line in
		*=n) [ -z "$got" ] || wrong+=" $got" ;;
		*) [ "$got" = "$line" ] || wrong+=" ${got:-$opt unset}" ;;
		esac
	done < <(grep '^CONFIG_' "$frag")
	asked=$(grep -E '^CONFIG_(IOMMUFD|VFIO_GROUP|VFIO_CONTAINER|IOMMUFD_VFIO_CONTAINER|VFIO_DEVICE_CDEV|VFIO_TEST_DRIVER)=' "$frag" |
		sed 's/^CONFIG_//' | tr '\n' ' ')
	if [ ! -f "$dir/config" ]; then
		echo "not ok - $name: configured (no .config; see $dir/logs)"
	elif [ -z "$wrong" ]; then
		echo "ok - $name: .config has ${asked% }"
	else
		echo "not ok - $name: .config has ${asked% } (got instead:${wrong})"
	fi

	if [ $brc = 0 ]; then
		echo "ok - $name: kernel builds"
		warnings=$(our_warnings "$dir/logs/kernel-build.log")
		if [ -z "$warnings" ]; then
			echo "ok - $name: no rustc or clippy warnings in our Rust code"
		else
			echo "not ok - $name: no rustc or clippy warnings in our Rust code (log: $dir/logs/kernel-build.log)"
			echo "$warnings" | sed 's/^/# /'
		fi
	else
		echo "not ok - $name: kernel builds (logs: $dir/logs)"
		grep -E 'error' "$dir/logs/kernel-build.log" 2>/dev/null | head -n 10 | sed 's/^/# /'
		times+=("$name build ${t_build}s (cpu ${c_build}s, failed)")
		continue
	fi

	# Boot, with the variant on the command line for the task (the reason for
	# a missing test driver with ~ for blanks).
	t0=$SECONDS
	console=$dir/vm.console
	boot_variant() {
		"$ROOT/scripts/run-vm.sh" --task kconfig-variant --timeout "${VARIANT_VM_TIMEOUT:-300}" \
			--log "$dir/vm.log" \
			--append "kviommufd=$iommufd kvgroup=$group kvcontainer=$container kvcdev=$cdev kvtestdrv=${testdrv_why:-1}" \
			"$initramfs" "$dir/bzImage" >"$console" 2>&1
	}
	boot_variant
	vrc=$?
	# Under TCG a guest once went silent for good in the middle of a function
	# reset, both vCPUs idle and no task reported blocked (the igb VM's step
	# has seen the like): a VM that stops or times out with no splat boots once
	# more, said here. A blocked task is a splat (run-vm.sh), never run again.
	if [ $vrc = 4 ] || [ $vrc = 5 ]; then
		cp "$console" "$console.first"
		echo "# $name: the first boot stopped or timed out (exit $vrc, console in $console.first); booted again"
		boot_variant
		vrc=$?
	fi
	t_boot=$((SECONDS - t0))
	# (kernel messages printed meanwhile become comments)
	tr -d '\r' <"$console" | sed -n '/^### KVARIANT/,/^### END/p' | grep -v '^###' |
		sed -E -e "s/^(ok|not ok) - /\1 - $name: /" -e 's/^\[ *[0-9]+\.[0-9]+\]/# &/'
	case $vrc in
	0) echo "ok - $name: boots and runs the checks with no kernel splat" ;;
	3) echo "not ok - $name: kernel splat (see $console)"
	   tr -d '\r' <"$console" | sed -n '/splat/,$p' | tail -n 20 | sed 's/^/# /' ;;
	4) echo "not ok - $name: the VM stopped without finishing the task (see $console)" ;;
	5) echo "not ok - $name: the VM timed out (see $console)" ;;
	*) echo "not ok - $name: the task exited $vrc (see $console)" ;;
	esac
	times+=("$name build ${t_build}s (cpu ${c_build}s) boot ${t_boot}s")
	note "variant $name: built in ${t_build}s (cpu ${c_build}s), booted and checked in ${t_boot}s" >&2
done
echo "# summary: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g'); all ${#times[@]} in $((SECONDS - t_all))s"
exit 0
