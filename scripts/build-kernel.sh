#!/usr/bin/env bash
# Configures (x86_64 tinyconfig, then the fragments scripts/kernel-base.config
# and scripts/kernel.config merged in that order) and builds the test kernel
# in out/build from the prepared tree out/linux.
#
# TREE, BUILD: the source tree and the build directory.  FRAGMENT: the config
# fragments, separated by blanks (no blanks in the paths), merged in order; a
# later line for the same symbol wins, and every symbol's last line is checked
# against the resulting .config.  KTARGETS: what to make (bzImage modules).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TREE=${TREE:-$OUT/linux}
BUILD=${BUILD:-$OUT/build}
FRAGMENT=${FRAGMENT:-$ROOT/scripts/kernel-base.config $ROOT/scripts/kernel.config}
read -r -a fragments <<<"$FRAGMENT"
[ ${#fragments[@]} -gt 0 ] || { echo "FRAGMENT names no file" >&2; exit 2; }
JOBS=${JOBS:-$(($(nproc) + 1))}
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
KMAKE=(make -C "$TREE" O="$BUILD" ARCH=x86_64 LLVM=-19 CLIPPY=1 -j"$JOBS")
mkdir -p "$BUILD"

# Reconfigure when a fragment or the Kconfig files changed.
stamp=$BUILD/.fragment-stamp
want=$(cat "${fragments[@]}" "$ROOT"/iommufd/Kconfig "$ROOT"/vfio/Kconfig | sha256sum)
if [ ! -f "$BUILD/.config" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	step "configuring the kernel (tinyconfig + $(for f in "${fragments[@]}"; do basename "$f"; done | paste -sd+ | sed 's/+/ + /g'))"
	run_logged kconfig-tiny "${KMAKE[@]}" tinyconfig
	run_logged kconfig-merge "$TREE/scripts/kconfig/merge_config.sh" -m -O "$BUILD" "$BUILD/.config" "${fragments[@]}"
	run_logged kconfig-olddef "${KMAKE[@]}" olddefconfig
	bad=0
	while read -r line; do
		case "$line" in CONFIG_*=n) opt=${line%=n}; grep -q "^$opt=" "$BUILD/.config" && { echo "config: $opt should be off" >&2; bad=1; } ;;
		CONFIG_*) grep -qx "$line" "$BUILD/.config" || { echo "config: wanted $line, got: $(grep "^${line%%=*}=" "$BUILD/.config" || echo unset)" >&2; bad=1; } ;;
		esac
	done < <(grep -h '^CONFIG_' "${fragments[@]}" | tac | awk -F= '!seen[$1]++' | tac)
	[ $bad = 0 ] || { echo "the fragments did not apply; see $BUILD/.config" >&2; exit 1; }
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
