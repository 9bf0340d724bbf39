#!/usr/bin/env bash
# Test step: lays the project into the tree, builds the test kernel (clippy
# on, KUnit built in) and checks what went into it. Prints TAP.
# Usage: test-kernel-build.sh PRISTINE_TREE
set -uo pipefail
. "$(dirname "$0")/lib.sh"

src=$1
TREE=$OUT/linux
BUILD=$OUT/build
echo "TAP version 13"

"$ROOT/scripts/prepare-tree.sh" "$src" >&2 || { echo "not ok - project laid into the kernel tree"; exit 1; }
# Our objects are rebuilt every time so that every rustc/clippy warning in our
# code appears in this build's log.
rm -f "$BUILD"/drivers/iommu/iommufd/*.o "$BUILD"/drivers/vfio/*.o "$BUILD"/drivers/vfio/*/*.o 2>/dev/null
if "$ROOT/scripts/build-kernel.sh" >&2; then
	echo "ok - kernel builds"
else
	echo "not ok - kernel builds (log: $LOGDIR/kernel-build.log)"
	exit 1
fi

warnings=$(our_warnings "$LOGDIR/kernel-build.log")
if [ -z "$warnings" ]; then
	echo "ok - no rustc or clippy warnings in our Rust code"
else
	echo "not ok - no rustc or clippy warnings in our Rust code"
	echo "$warnings" | sed 's/^/# /'
fi

# No C from upstream's iommufd or VFIO: the directories hold only our files, and
# none of upstream's C functions is in the kernel.
c_files=$(cd "$TREE" && find drivers/iommu/iommufd drivers/vfio -name '*.c' |
	while read -r f; do
		case $f in drivers/iommu/iommufd/*) [ -f "$ROOT/iommufd/${f#drivers/iommu/iommufd/}" ] ;;
		*) [ -f "$ROOT/vfio/${f#drivers/vfio/}" ] ;; esac || echo "$f"
	done)
if [ -z "$c_files" ]; then echo "ok - no upstream C files in drivers/iommu/iommufd or drivers/vfio"
else echo "not ok - upstream C files in the tree: $c_files"; fi
# (iommufd_ctx_get and the other kAPI names are ours too, exported from Rust: not markers.)
c_syms='iommufd_fops_ioctl|iommufd_get_hw_info|iommufd_object_remove|iopt_map_user_pages|iommufd_vfio_ioctl|vfio_fops_unl_ioctl|vfio_register_group_dev|vfio_group_fops_unl_ioctl|vfio_device_fops_unl_ioctl|vfio_pci_core_ioctl|vfio_iommu_type1_ioctl'
found=$(grep -E " ($c_syms)$" "$BUILD/System.map" || true)
if [ -z "$found" ]; then echo "ok - none of upstream's C iommufd/VFIO functions is linked"
else echo "not ok - upstream C functions linked:"; echo "$found" | sed 's/^/# /'; fi

for m in drivers/iommu/iommufd/iommufd.ko drivers/vfio/vfio.ko; do
	if grep -qx "kernel/$m" "$BUILD/modules.builtin"; then echo "ok - module name $(basename "$m")"
	else echo "not ok - module name $(basename "$m") (modules.builtin: $(grep -E 'iommufd|vfio' "$BUILD/modules.builtin" | tr '\n' ' '))"; fi
done

# The C code that calls into iommufd and VFIO still builds and links.
for o in virt/kvm/vfio.o drivers/iommu/intel/iommu.o drivers/iommu/iommu.o; do
	if [ -f "$BUILD/$o" ]; then echo "ok - C caller $o builds"
	else echo "not ok - C caller $o builds"; fi
done
grep -q " iova_bitmap_set$" "$BUILD/System.map" && echo "ok - iova_bitmap_set provided for IOMMU drivers" ||
	echo "not ok - iova_bitmap_set provided for IOMMU drivers"
