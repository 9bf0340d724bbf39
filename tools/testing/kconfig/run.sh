#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The Kconfig matrix of iommufd and VFIO, as TAP on stdout.
#
# Lays the project into its own copy of the kernel tree (out/kconfig-tree,
# with scripts/prepare-tree.sh), then, on x86_64 (tinyconfig + RUST, PCI,
# modules) and powerpc64le (ppc64le_defconfig, SPAPR_TCE_IOMMU on, + RUST),
# in parallel, resolves every combination a user can ask for of IOMMUFD,
# VFIO, VFIO_GROUP, VFIO_CONTAINER, VFIO_DEVICE_CDEV, IOMMUFD_VFIO_CONTAINER,
# VFIO_NOIOMMU, VFIO_PCI and IOMMUFD_TEST, and checks the rules (matrix.py
# says which).  Config dirs: out/kconfig-x86_64, out/kconfig-powerpc.
# Progress and build logs go to stderr and out/logs/kconfig-*.log.
#
# Usage: run.sh [PRISTINE_KERNEL_TREE] [--arch x86_64|powerpc]...
# The tree defaults to $KERNEL_SRC, then out/src/linux-source-7.3, then
# whatever scripts/get-kernel-source.sh finds.  Exits non-zero on failure.
#
# To watch it catch a broken rule without touching the work tree: copy the
# project (without out/ and .git), break a rule in the copy, and run the
# copy's tools/testing/kconfig/run.sh with OUT=<this project>/out.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../scripts/lib.sh"

src=
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	src=$1
	shift
fi
[ -n "$src" ] || src=${KERNEL_SRC:-}
[ -n "$src" ] || { [ -f "$OUT/src/linux-source-7.3/Makefile" ] && src=$OUT/src/linux-source-7.3; }
[ -n "$src" ] || src=$("$ROOT/scripts/get-kernel-source.sh" | tail -n 1)

bail() {
	printf 'TAP version 13\n1..1\nnot ok 1 - kconfig: %s\n' "$1"
	exit 1
}
[ -f "$src/Makefile" ] || bail "no kernel source tree (got '$src')"

TREE=$OUT/kconfig-tree
# One run at a time: the tree copy and the config dirs are shared.
exec 9>"$OUT/kconfig-tree.lock"
flock 9
step "laying the project into $TREE" >&2
if ! "$ROOT/scripts/prepare-tree.sh" "$src" "$TREE" >"$LOGDIR/kconfig-prepare-tree.log" 2>&1; then
	tail -n 20 "$LOGDIR/kconfig-prepare-tree.log" >&2
	bail "scripts/prepare-tree.sh failed (see $LOGDIR/kconfig-prepare-tree.log)"
fi

export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
step "resolving the Kconfig matrix (logs: $LOGDIR/kconfig-*.log)" >&2
exec python3 "$HERE/matrix.py" --tree "$TREE" --out "$OUT" --logdir "$LOGDIR" "$@"
