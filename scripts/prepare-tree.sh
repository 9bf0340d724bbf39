#!/usr/bin/env bash
# Lays the project into a build copy of the kernel tree (out/linux):
#   iommufd/  -> drivers/iommu/iommufd   (replaces the C code entirely)
#   vfio/     -> drivers/vfio            (replaces the C code entirely)
#   uapi/     -> include/uapi            (the one uAPI definition)
#   rust/     -> rust/                   (new kernel-crate files; *.patch applied)
#   kernel-patches/X.patch               (applied to X, other kernel files)
# Files are only rewritten when their content changes, so a second build
# recompiles only what changed.
# Usage: prepare-tree.sh PRISTINE_TREE [BUILD_TREE]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PRISTINE=$1
TREE=${2:-$OUT/linux}
id=$( (cat "$OUT/src/source-id" 2>/dev/null || echo "$PRISTINE") | head -n 1)

if [ "$(cat "$TREE/.pristine-id" 2>/dev/null)" != "$id" ]; then
	step "copying $PRISTINE to $TREE"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	cp -a "$PRISTINE"/. "$TREE"/
	echo "$id" >"$TREE/.pristine-id"
fi

sync_dir() { rsync -rlc --delete "$1" "$2"; }
sync_dir "$ROOT/iommufd/" "$TREE/drivers/iommu/iommufd/"
sync_dir "$ROOT/vfio/" "$TREE/drivers/vfio/"
rsync -rlc "$ROOT/uapi/" "$TREE/include/uapi/"
rsync -rlc --exclude='*.patch' "$ROOT/rust/" "$TREE/rust/"

# Patches to existing kernel-crate files: apply to the pristine file and
# install the result only if it differs from what the tree holds.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# rust/X.patch patches rust/X; kernel-patches/X.patch patches X elsewhere in
# the tree (headers whose #ifs name our Kconfig symbols).
find "$ROOT/rust" "$ROOT/kernel-patches" -name '*.patch' | sort | while read -r p; do
	rel=${p#"$ROOT"/}
	rel=${rel#kernel-patches/}
	rel=${rel%.patch}
	cp "$PRISTINE/$rel" "$tmp/file"
	patch -s --no-backup-if-mismatch "$tmp/file" <"$p" ||
		{ echo "patch $p does not apply to $rel" >&2; exit 1; }
	cmp -s "$tmp/file" "$TREE/$rel" || cp "$tmp/file" "$TREE/$rel"
done
