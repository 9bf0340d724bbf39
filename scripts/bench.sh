#!/usr/bin/env bash
# bench.sh (make bench): IOMMU_IOAS_MAP/UNMAP of 1 GiB (4K anonymous, THP,
# a hugetlb memfd through IOMMU_IOAS_MAP_FILE and through its user VA; no
# domain, mock domain, and the emulated VT-d through QEMU's edu on vfio-pci by
# the device cdev), VFIO_IOMMU_MAP_DMA/UNMAP_DMA of the same in a type1v2
# container holding edu's group (VT-d again), and IOMMU_HWPT_GET_DIRTY_BITMAP
# over 1 GiB and 64 GiB of mock IOVA, on our kernel and on the stock C Linux
# 7.3, in one run; prints each case's time on both and the ratio.
#
#   1. builds both kernels with the same configuration (unless STOCK_KERNEL
#      or OURS_KERNEL names a bzImage to use): the stock one from the
#      pristine source (the tree get-kernel-source.sh prints) plus the C
#      iommufd's mock domain (IOMMUFD_TEST), ours from the prepared tree.
#      BENCH_CONFIG=release (the default): scripts/kernel-base.config and
#      scripts/kernel.config without its debugging section (no KASAN,
#      lockdep, kmemleak, KUnit), as a production kernel would be, into
#      out/bench-build-{stock,ours}.  Both have vfio-pci, the device cdev,
#      the group and the container (the stock one's is the C type1, which
#      the VT-d group cases measure; ours is the native container on the
#      engine); only ours has the vfio-test driver.
#      BENCH_CONFIG=debug: the test kernels' configuration, in out/build-stock
#      and our test kernel's out/build;
#   2. (nothing: step 1 found or built our kernel)
#   3. builds tools/bench/iommufd_map_bench and one initramfs with it;
#   4. boots each kernel (BENCH_MEM of RAM) with the VM task `bench` and collects
#      the `BENCH <case> <ns>` lines of both consoles;
#   5. prints case, stock ns, ours ns, stock/ours (>1: ours is faster).
#
# Not part of `make test`.  Everything of its own goes to $BENCH_OUT (logs in
# $BENCH_OUT/logs) and out/build-stock.  Environment:
#   BENCH_ARGS    arguments of iommufd_map_bench, default "-b 5" (see its
#                 header comment: -r rounds, -k kinds, -n 0 for no 4K cases;
#                 "-k dirty" for the dirty-tracking cases alone; -d domains,
#                 e.g. "-d vtd-cdev,vtd-group" for the VT-d cases alone)
#   VM_TIMEOUT    per VM, default 1500 seconds
#   BENCH_CONFIG  release (default) or debug, see 1.
#   STOCK_BUILD   stock kernel build directory (default: see 1.)
#   OURS_BUILD    our kernel's build directory (default: see 1.)
#   STOCK_KERNEL  a stock bzImage to use as it is: no stock build at all
#                 (default: build $STOCK_BUILD and use its bzImage)
#   OURS_KERNEL   our bzImage to use as it is (default: $OURS_BUILD's)
#   BENCH_OUT     where the program, initramfs, logs and results go, default
#                 out/bench
#   BENCH_MEM     the VMs' RAM, default 4G (1 GiB of it hugetlb pages)
#   BENCH_KERNELS which kernels to run, default "stock ours"; the table
#                 compares with the other kernel's results of the last run
#                 that had it (in $BENCH_OUT/results), when they are there:
#                 the figures are instruction counts under icount, so a run
#                 of one kernel and a later run of the other compare as well
#                 as one run of both (same BENCH_ARGS, same program)
#   BENCH_CLOCK   icount (the default) or wall.  icount runs QEMU with
#                 -icount shift=0: the guest's clock advances 1 ns per guest
#                 instruction, so a case's figure is the instructions it ran,
#                 the same to three digits from one run to the next and
#                 whatever else the host is doing.  On this 2-core TCG host
#                 wall-clock figures move by 20% to 2x between runs (stock's
#                 no-domain map took 3.5 us in one boot and 7.5 us in the
#                 next), more than the differences being measured.  What
#                 icount does not see is the cost of cache and TLB misses,
#                 which TCG's wall time does not model faithfully either.
#                 wall: plain TCG, the guest clock is the host's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BOUT=${BENCH_OUT:-$OUT/bench}
BENCH_CONFIG=${BENCH_CONFIG:-release}
case $BENCH_CONFIG in
release)
	STOCK_BUILD=${STOCK_BUILD:-$OUT/bench-build-stock}
	OURS_BUILD=${OURS_BUILD:-$OUT/bench-build-ours} ;;
debug)
	STOCK_BUILD=${STOCK_BUILD:-$OUT/build-stock}
	OURS_BUILD=${OURS_BUILD:-$OUT/build} ;;
*) echo "BENCH_CONFIG is release or debug, not $BENCH_CONFIG" >&2; exit 2 ;;
esac
STOCK_KERNEL=${STOCK_KERNEL:-}
OURS_KERNEL=${OURS_KERNEL:-}
BENCH_MEM=${BENCH_MEM:-4G}
BENCH_ARGS=${BENCH_ARGS:--b 5}
VM_TIMEOUT=${VM_TIMEOUT:-1500}
BENCH_KERNELS=${BENCH_KERNELS:-stock ours}
BENCH_CLOCK=${BENCH_CLOCK:-icount}
case $BENCH_CLOCK in
icount) clock_args=(--qemu-arg -icount --qemu-arg shift=0,sleep=off) ;;
wall) clock_args=() ;;
*) echo "BENCH_CLOCK is icount or wall, not $BENCH_CLOCK" >&2; exit 2 ;;
esac
mkdir -p "$BOUT/logs" "$BOUT/opt/bench" "$BOUT/opt/tasks" "$BOUT/results"
LOGDIR=$BOUT/logs # (run_logged's; the scripts below get OUT=$BOUT for theirs)

# The pristine tree: from `make source` when it ran, else found now.
if [ -s "$OUT/.source-path" ]; then
	pristine=$(tail -n 1 "$OUT/.source-path")
else
	pristine=$("$ROOT/scripts/get-kernel-source.sh" | tail -n 1)
fi
[ -f "$pristine/drivers/iommu/iommufd/main.c" ] ||
	{ echo "$pristine is not a pristine 7.3 tree (no C iommufd)" >&2; exit 1; }
[ -z "$STOCK_KERNEL" ] || [ -f "$STOCK_KERNEL" ] || { echo "no kernel at STOCK_KERNEL=$STOCK_KERNEL" >&2; exit 1; }
[ -z "$OURS_KERNEL" ] || [ -f "$OURS_KERNEL" ] || { echo "no kernel at OURS_KERNEL=$OURS_KERNEL" >&2; exit 1; }

# 1. The configuration both kernels share: the test kernels' fragments, or for
# release those up to the debugging section of scripts/kernel.config, keeping
# only what the mock domain (IOMMUFD_TEST) depends on, and the normal SLUB.
base=$BOUT/$BENCH_CONFIG.config
if [ "$BENCH_CONFIG" = release ]; then
	{
		cat "$ROOT/scripts/kernel-base.config"
		sed '/^# Tests and debugging/,$d' "$ROOT/scripts/kernel.config"
		printf '# bench.sh: what IOMMUFD_TEST depends on, nothing more\n'
		printf 'CONFIG_DEBUG_KERNEL=y\nCONFIG_SLUB_TINY=n\nCONFIG_FAULT_INJECTION=y\nCONFIG_RUNTIME_TESTING_MENU=y\n'
	} >"$base.new"
else
	cat "$ROOT/scripts/kernel-base.config" "$ROOT/scripts/kernel.config" >"$base.new"
fi
if cmp -s "$base.new" "$base"; then rm "$base.new"; else mv "$base.new" "$base"; fi
# The stock kernel also needs the AMDv1 page table format for its mock domain
# (VT-d does not select it).
fragment=$BOUT/$BENCH_CONFIG-stock.config
{
	cat "$base"
	printf '\n# bench.sh: the mock domain of the C iommufd (IOMMU_TEST_CMD)\n'
	printf 'CONFIG_IOMMU_PT_AMDV1=y\nCONFIG_IOMMUFD_TEST=y\n'
	# The VT-d cases: vfio-pci, the device cdev, the group and the C type1
	# container (VFIO_CONTAINER selects it on x86); vfio-test is ours only.
	printf '# bench.sh: the VT-d cases (vfio-pci, cdev, group + type1 container)\n'
	printf 'CONFIG_VFIO_PCI=y\nCONFIG_VFIO_DEVICE_CDEV=y\nCONFIG_VFIO_GROUP=y\n'
	printf 'CONFIG_VFIO_CONTAINER=y\nCONFIG_VFIO_IOMMU_TYPE1=y\nCONFIG_VFIO_TEST_DRIVER=n\n'
} >"$fragment.new"
if cmp -s "$fragment.new" "$fragment"; then rm "$fragment.new"; else mv "$fragment.new" "$fragment"; fi
if [ -n "$STOCK_KERNEL" ]; then
	stock_kernel=$STOCK_KERNEL
else
	case " $BENCH_KERNELS " in *" stock "*)
		step "the stock C kernel ($BENCH_CONFIG, $pristine into $STOCK_BUILD)"
		OUT=$BOUT TREE=$pristine BUILD=$STOCK_BUILD FRAGMENT=$fragment "$ROOT/scripts/build-kernel.sh" ;;
	esac
	stock_kernel=$STOCK_BUILD/arch/x86/boot/bzImage
fi
if [ -n "$OURS_KERNEL" ]; then
	ours_kernel=$OURS_KERNEL
else
	case " $BENCH_KERNELS " in *" ours "*)
		step "our kernel ($BENCH_CONFIG, $OUT/linux into $OURS_BUILD)"
		tree=$OUT/linux
		OUT=$BOUT TREE=$tree BUILD=$OURS_BUILD FRAGMENT=$base "$ROOT/scripts/build-kernel.sh" ;;
	esac
	ours_kernel=$OURS_BUILD/arch/x86/boot/bzImage
fi
case " $BENCH_KERNELS " in *" ours "*)
	[ -f "$ours_kernel" ] || { echo "no kernel at $ours_kernel" >&2; exit 1; } ;;
esac

# 2./3. The program, against the pristine uAPI headers (ours are the same
# bytes; the uAPI layout test checks that) and our iommufd/iommufd_test.h
# (upstream's ABI), and one initramfs for both.
step "building tools/bench"
run_logged bench-headers make -C "$pristine" O="$BOUT/hdr-obj" ARCH=x86_64 LLVM=-19 \
	headers_install INSTALL_HDR_PATH="$BOUT/headers"
run_logged bench-build make -C "$ROOT/tools/bench" OUTPUT="$BOUT/opt/bench" \
	KHDR_INCLUDES="-I$BOUT/headers/include" KSELFTEST_DIR="$pristine/tools/testing/selftests"
install -m 755 "$ROOT/scripts/vm-tasks/bench" "$BOUT/opt/tasks/bench"
OUT=$BOUT "$ROOT/scripts/make-initramfs.sh" "$BOUT/initramfs.cpio.gz" "$BOUT/opt/bench" "$BOUT/opt/tasks"

# 4. One VM per kernel, one after the other (they would slow each other down).
# Shown live: the program's commentary and results, and run-vm's verdict.
benchargs=$(echo "$BENCH_ARGS" | tr ' ' ,)
declare -A vm_rc=()
for which in $BENCH_KERNELS; do rm -f "$BOUT/results/$which.txt"; done
for which in $BENCH_KERNELS; do
	if [ $which = stock ]; then kernel=$stock_kernel; else kernel=$ours_kernel; fi
	step "benchmark on the $which kernel ($kernel)"
	rc=0
	OUT=$BOUT "$ROOT/scripts/run-vm.sh" --task bench --timeout "$VM_TIMEOUT" \
		--qemu-arg -m --qemu-arg "$BENCH_MEM" "${clock_args[@]}" --append "vmkmemleak=0${benchargs:+ benchargs=$benchargs}" \
		--log "$BOUT/logs/vm-bench-$which.log" "$BOUT/initramfs.cpio.gz" "$kernel" \
		>"$BOUT/logs/run-vm-$which.out" 2>&1 &
	pid=$!
	tail -n +1 -F --pid=$pid "$BOUT/logs/run-vm-$which.out" 2>/dev/null |
		grep --line-buffered -aE '^(# |BENCH|=== |thp:|hugetlb:|memory:)|FAILED|booted to|VM ran|splat' |
		sed -u 's/^/    /' || true
	wait $pid || rc=$?
	vm_rc[$which]=$rc
	grep -aoE 'BENCH(-NA)? [^ ]+ .*' "$BOUT/logs/vm-bench-$which.log" | tr -d '\r' >"$BOUT/results/$which.txt" || true
	[ $rc = 0 ] || note "the $which run failed (run-vm status $rc; log: $BOUT/logs/vm-bench-$which.log); using what it printed"
done

# 5. The table.
step "results"
python3 - "$BOUT/results/stock.txt" "$BOUT/results/ours.txt" <<'PY'
import os, sys

def load(path):
    vals, na, order = {}, {}, []
    if not os.path.exists(path):
        return vals, na, order
    for line in open(path, errors="replace"):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        tag, case, rest = parts
        if tag == "BENCH":
            try:
                vals[case] = int(rest.split()[0])
            except ValueError:
                continue
            order.append(case)
        elif tag == "BENCH-NA":
            na[case] = rest.strip()
            order.append(case)
    return vals, na, order

def why_na(na, case):
    # A reason for the case itself, its kind (*.kind), or its domain.
    dom, _, rest = case.partition(".")
    kind = rest.split(".")[0]
    for key in (case, "*." + kind, dom + "." + kind, dom):
        if key in na:
            r = na[key]
            if "over the time budget" in r:
                return None  # shown as "-", like the steps after it
            if "no mock domain yet" in r:
                return "n/a (no mock domain yet)"
            return "n/a (" + r + ")"
    return None

stock, stock_na, so = load(sys.argv[1])
ours, ours_na, oo = load(sys.argv[2])
# Stock's order, with each case only ours got to (a longer 4K ladder) placed
# after the case ours ran before it.
cases = [c for i, c in enumerate(so) if "." in c and c not in so[:i]]
prev = None
for c in oo:
    if "." not in c:
        continue
    if c not in cases:
        cases.insert(cases.index(prev) + 1 if prev in cases else len(cases), c)
    prev = c
# "*.kind" (a memory kind that could not be set up) only when no case of it ran.
cases = [c for c in cases if not c.startswith("*.")
         or not any(d.split(".")[1:2] == c.split(".")[1:2] and not d.startswith("*.") for d in cases)]

def cell(vals, na, c):
    if c in vals:
        return f"{vals[c]:,}"
    return why_na(na, c) or "-"

rows = [("case", "stock ns", "ours ns", "stock/ours")]
for c in cases:
    s, o = stock.get(c), ours.get(c)
    if cell(stock, stock_na, c) == "-" and cell(ours, ours_na, c) == "-":
        continue  # neither kernel got there
    ratio = f"{s / o:.2f}" if s and o else "n/a"
    rows.append((c, cell(stock, stock_na, c), cell(ours, ours_na, c), ratio))
w = [max(len(r[i]) for r in rows) for i in range(4)]
for i, r in enumerate(rows):
    print(f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}")
    if i == 0:
        print("  " + "  ".join("-" * x for x in w))
if not cases:
    print("  (no results: see the VM logs)")
PY
cat <<'EOF'

    ns: median time of one operation (map1G/unmap1G: one ioctl on the whole 1 GiB;
    map4K.nN/unmap4K.nN: one of N separate 4 KiB mappings at kernel-allocated IOVAs).
    Memory: anon4k (4K pages), thp (2M THPs), hugetlb (a 2M-page memfd through
    IOMMU_IOAS_MAP_FILE), hugetlb-va (the same pages through IOMMU_IOAS_MAP of their
    mmap()); all touched before the first map.  Domain "mock": the pages are pinned and
    mapped into the mock domain's page table.
    dirty.SPACE.PATTERN: one IOMMU_HWPT_GET_DIRTY_BITMAP (read and clear, a bit per
    4 KiB) of a dirty-tracking mock HWPT after IOMMU_TEST_OP_DIRTY marked nothing
    (clean), a page every 2 MiB or 64 MiB (sparse) or everything (all); SPACE 1G-4k is
    1 GiB of 4K pages in the default mock page table, 64G-huge is one 1 GiB hugetlb
    memfd mapped 64 times into a MOCK_IOMMUPT_HUGE table of 1 MiB entries.
    Domains "vtd-cdev" and "vtd-group": QEMU's emulated VT-d (caching mode), edu bound to
    vfio-pci.  vtd-cdev: /dev/vfio/devices/vfioN bound to /dev/iommu and attached to an
    IOAS (a VT-d domain), IOMMU_IOAS_MAP(_FILE)/UNMAP at kernel-chosen IOVAs.  vtd-group:
    edu's group in a /dev/vfio/vfio type1v2 container, VFIO_IOMMU_MAP_DMA/UNMAP_DMA at
    fixed IOVAs (no file mappings there: no "hugetlb" kind).  Stock's container is the C
    vfio_iommu_type1 (its dma_entry_limit raised past 65535 for the 4K ladder), ours is
    the native container on iommufd's engine.  Pinned and mapped; edu does no DMA.
    stock/ours > 1 means ours is faster.
    Caveats: domain "none" is an IOAS without a domain, where both kernels only record
    the mapping (no pinning, no page table): it measures the bookkeeping path, a few
    microseconds an ioctl, so each of its rounds is the mean of 256 map+unmap pairs.  Both
    kernels have the same configuration (BENCH_CONFIG: release, or debug = the test
    kernels with KASAN, lockdep and kmemleak, whose costs then dominate) and run under
    QEMU TCG, so the absolute numbers are inflated many times over; only the ratios
    mean something, and they carry the noise of the host (compare a few runs).
    "-": that kernel did not get to the case within the time budget per case (the 4K
    ladder climbs 256, 1024, ... 262144 mappings while the next step fits; raise it
    with BENCH_ARGS="-b SECONDS" to climb further).
EOF
note "raw results: $BOUT/results/{stock,ours}.txt; consoles: $BOUT/logs/vm-bench-{stock,ours}.log"
rc=0
for which in $BENCH_KERNELS; do [ "${vm_rc[$which]}" = 0 ] || rc=1; done
exit $rc
