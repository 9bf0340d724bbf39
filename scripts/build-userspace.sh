#!/usr/bin/env bash
# Builds the programs that run inside the VM, statically, against the uAPI
# headers of the prepared tree (so they see exactly our uapi/):
#   out/userspace/opt/bin        the demo
#   out/userspace/opt/selftests  our kselftests
#   out/userspace/opt/conformance  the kernel's own iommufd selftests
#                                (tools/testing/selftests/iommu of the tree,
#                                unmodified, with our iommufd_test.h) and
#                                its vfio selftests (tools/testing/selftests/vfio)
#   out/userspace/opt/tasks      what the VM runs (demo, tests)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TREE=${TREE:-$OUT/linux}
HDR=$OUT/headers
US=$OUT/userspace/opt
mkdir -p "$US/bin" "$US/selftests" "$US/conformance" "$US/tasks"

step "installing uAPI headers"
run_logged headers make -C "$TREE" O="$OUT/build" ARCH=x86_64 LLVM=-19 headers_install INSTALL_HDR_PATH="$HDR"

step "building userspace programs"
CFLAGS="-static -O2 -Wall -Werror -I$HDR/include"
run_logged demo-build gcc $CFLAGS -o "$US/bin/iommufd_demo" "$ROOT/tools/demo/iommufd_demo.c"
run_logged edu-demo-build gcc $CFLAGS -Wno-format-truncation -o "$US/bin/edu_demo" "$ROOT/tools/demo/edu_demo.c"
for suite in "$ROOT"/tools/testing/selftests/*/; do
	[ -f "$suite/Makefile" ] || continue
	run_logged "selftest-$(basename "$suite")" make -C "$suite" OUTPUT="$US/selftests" \
		KHDR_INCLUDES="-I$HDR/include" KSELFTEST_DIR="$TREE/tools/testing/selftests"
done
# Upstream's own Makefile and lib.mk: KHDR_INCLUDES puts our headers first,
# USERLDFLAGS links statically (the VM has no libc); -B since lib.mk does not
# know that the programs depend on the headers and iommufd_test.h.
run_logged conformance-build make -B -C "$TREE/tools/testing/selftests/iommu" \
	OUTPUT="$US/conformance" KHDR_INCLUDES="-I$HDR/include" USERLDFLAGS=-static
# The vfio selftests' Makefile has no USERLDFLAGS: EXTRA_CFLAGS reaches the
# link too.  -isystem, as the kernel's own `make headers` gives them: the
# uAPI headers must come after tools/include, whose linux/types.h the
# selftest library needs.
run_logged conformance-vfio-build make -B -C "$TREE/tools/testing/selftests/vfio" \
	OUTPUT="$US/conformance" KHDR_INCLUDES="-isystem $HDR/include" EXTRA_CFLAGS=-static
rm -rf "$US/conformance/libvfio" "$US"/conformance/*.[od]
rsync -rc "$ROOT/scripts/vm-tasks/" "$US/tasks/"
note "$(ls "$US/selftests" | wc -l) selftest programs, $(ls "$US/conformance" | wc -l) upstream iommufd and vfio selftest programs"
