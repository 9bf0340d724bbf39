#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Check that uapi/linux/{iommufd,vfio}.h of this project, and the selftest ABI
# iommufd/iommufd_test.h (IOMMU_TEST_CMD), are ABI identical to the upstream
# kernel's: same names, struct/union sizes, alignments and member
# offsets (on x86_64 natively and on i386/arm/aarch64 via clang), enum and
# #define values including ioctl numbers. Output is KTAP; exit status is
# non-zero if any test point fails.
#
# Usage: tools/testing/uapi_layout/run.sh UPSTREAM_KERNEL_TREE [OUR_UAPI_DIR [OUR_IOMMUFD_DIR]]
#   UPSTREAM_KERNEL_TREE  e.g. out/src/linux-source-7.3
#   OUR_UAPI_DIR          defaults to <repo>/uapi (holding linux/*.h)
#   OUR_IOMMUFD_DIR       defaults to <repo>/iommufd (holding iommufd_test.h)
# Environment:
#   UAPI_LAYOUT_TARGETS   clang target triples to check besides native
#                         (default: i386-linux-gnu armv7a-linux-gnueabihf
#                         aarch64-linux-gnu; empty string: native only)
#   UAPI_LAYOUT_KEEP      keep the generated probes and outputs in this dir
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	sed -n '/^# Usage/,/^# Environment/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
tree=$1
ours=${2:-$root/uapi}
ours_iommufd=${3:-$root/iommufd}

for h in include/uapi/linux/iommufd.h include/uapi/linux/vfio.h \
	 drivers/iommu/iommufd/iommufd_test.h; do
	if [ ! -f "$tree/$h" ]; then
		echo "run.sh: $tree/$h not found" >&2
		exit 2
	fi
done
for tool in python3 gcc; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 2; }
done

exec python3 "$here/uapi_layout.py" "$tree" "$ours" "$ours_iommufd"
