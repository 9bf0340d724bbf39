#!/usr/bin/env bash
# Configures (from scripts/kernel.config on top of x86_64 tinyconfig) and
# builds the test kernel in out/build from the prepared tree out/linux.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TREE=${TREE:-$OUT/linux}
BUILD=${BUILD:-$OUT/build}
FRAGMENT=${FRAGMENT:-$ROOT/scripts/kernel.config}
JOBS=${JOBS:-$(($(nproc) + 1))}
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
KMAKE=(make -C "$TREE" O="$BUILD" ARCH=x86_64 LLVM=-19 CLIPPY=1 -j"$JOBS")
mkdir -p "$BUILD"

# Reconfigure when the fragment or the Kconfig files changed.
stamp=$BUILD/.fragment-stamp
want=$(cat "$FRAGMENT" "$ROOT"/iommufd/Kconfig "$ROOT"/vfio/Kconfig | sha256sum)
if [ ! -f "$BUILD/.config" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	step "configuring the kernel (tinyconfig + $(basename "$FRAGMENT"))"
	run_logged kconfig-tiny "${KMAKE[@]}" tinyconfig
	run_logged kconfig-merge "$TREE/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "$FRAGMENT"
	run_logged kconfig-olddef "${KMAKE[@]}" olddefconfig
	bad=0
	while read -r line; do
		case "$line" in CONFIG_*=n) opt=${line%=n}; grep -q "^$opt=" "$BUILD/.config" && { echo "config: $opt should be off" >&2; bad=1; } ;;
		CONFIG_*) grep -qx "$line" "$BUILD/.config" || { echo "config: wanted $line, got: $(grep "^${line%%=*}=" "$BUILD/.config" || echo unset)" >&2; bad=1; } ;;
		esac
	done <"$FRAGMENT"
	[ $bad = 0 ] || { echo "the fragment did not apply; see $BUILD/.config" >&2; exit 1; }
	echo "$want" >"$stamp"
fi

step "building the kernel (-j$JOBS; log: $LOGDIR/kernel-build.log)"
start=$(date +%s)
# The build runs in the background; a line a minute says how far it got.
"${KMAKE[@]}" -k ${KTARGETS:-bzImage modules} >"$LOGDIR/kernel-build.log" 2>&1 &
pid=$!
while ! wait_for "$pid" 60; do
	note "... $(grep -cE '^  (CC|RUSTC|CLIPPY|AS|LD|AR) ' "$LOGDIR/kernel-build.log") steps, $(( $(date +%s) - start ))s, last: $(tail -n 1 "$LOGDIR/kernel-build.log" | cut -c1-70)"
done
if ! wait "$pid"; then
	echo "FAILED: kernel build" >&2
	grep -E "error|Error|ERROR" "$LOGDIR/kernel-build.log" | head -n 30 >&2
	echo "full log: $LOGDIR/kernel-build.log" >&2
	exit 1
fi
note "built in $(( $(date +%s) - start ))s: $BUILD/arch/x86/boot/bzImage"
