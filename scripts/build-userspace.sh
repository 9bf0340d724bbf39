#!/usr/bin/env bash
# Builds the programs that run inside the VM, statically, against the uAPI
# headers of the prepared tree (so they see exactly our uapi/):
#   out/userspace/opt/bin        the demo
#   out/userspace/opt/selftests  our kselftests
#   out/userspace/opt/tasks      what the VM runs (demo, tests)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TREE=${TREE:-$OUT/linux}
HDR=$OUT/headers
US=$OUT/userspace/opt
mkdir -p "$US/bin" "$US/selftests" "$US/tasks"

step "installing uAPI headers"
run_logged headers make -C "$TREE" O="$OUT/build" ARCH=x86_64 LLVM=-19 headers_install INSTALL_HDR_PATH="$HDR"

step "building userspace programs"
CFLAGS="-static -O2 -Wall -Werror -I$HDR/include"
run_logged demo-build gcc $CFLAGS -o "$US/bin/iommufd_demo" "$ROOT/tools/demo/iommufd_demo.c"
for suite in "$ROOT"/tools/testing/selftests/*/; do
	[ -f "$suite/Makefile" ] || continue
	run_logged "selftest-$(basename "$suite")" make -C "$suite" OUTPUT="$US/selftests" \
		KHDR_INCLUDES="-I$HDR/include" KSELFTEST_DIR="$TREE/tools/testing/selftests"
done
rsync -rc "$ROOT/scripts/vm-tasks/" "$US/tasks/"
note "$(ls "$US/selftests" | wc -l) selftest programs"
