#!/usr/bin/env bash
# run-vm.sh [OPTIONS] INITRAMFS [KERNEL]
#
# Boots KERNEL (default: out/build/arch/x86/boot/bzImage) with INITRAMFS (from
# scripts/make-initramfs.sh) in QEMU: q35 under TCG, with an emulated VT-d
# (intel-iommu) and QEMU's edu PCI device to hand to VFIO.  The serial console
# goes to stdout and to $LOGDIR/vm-NAME.log.
#
# With --task NAME the VM's /init runs /opt/tasks/NAME and powers off; this
# script then exits with the task's exit code (from its `VM-TASK-EXIT <rc>`
# line), or fails when:
#   3  the console shows a kernel splat (BUG, WARNING, Oops, KASAN, kmemleak,
#      lockdep, UBSAN, panic...): the lines are printed at the end; this
#      wins over 4 and 5
#   4  the VM stopped without the marker (kernel panic, crash of /init...)
#   5  the timeout ran out (the VM is killed)
#   2  bad usage, missing files
# Without --task the VM starts an interactive shell on the console (leave
# QEMU with Ctrl-A x), and no timeout applies unless one is given.
#
# Options (and the environment variables they default to):
#   --task NAME         task to run (VM_TASK)
#   --timeout SECS      wall time limit, default 600, 0 for none (VM_TIMEOUT)
#   --qemu PATH         QEMU binary, default qemu-system-x86_64 (QEMU)
#   --append ARGS       extra kernel command line (VM_APPEND; both are used)
#   --qemu-arg ARG      one extra QEMU argument, may repeat (VM_QEMU_ARGS:
#                       several, split on blanks)
#   --no-iommu          no emulated VT-d: every device's DMA goes untranslated
#                       (VM_IOMMU=none), for VFIO's no-IOMMU mode
#   --allow-splats      report kernel splats but do not fail on them
#   --log PATH          console log, default $LOGDIR/vm-NAME.log
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

task=${VM_TASK:-}
timeout=${VM_TIMEOUT:-}
qemu=${QEMU:-qemu-system-x86_64}
append=${VM_APPEND:-}
read -r -a qemu_extra <<<"${VM_QEMU_ARGS:-}"
allow_splats=0
iommu=${VM_IOMMU:-intel}
log=
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--task) task=${2:?--task needs a name}; shift 2 ;;
	--timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
	--qemu) qemu=${2:?--qemu needs a path}; shift 2 ;;
	--append) append="$append ${2?--append needs arguments}"; shift 2 ;;
	--qemu-arg) qemu_extra+=("${2?--qemu-arg needs an argument}"); shift 2 ;;
	--allow-splats) allow_splats=1; shift ;;
	--no-iommu) iommu=none; shift ;;
	--log) log=${2:?--log needs a path}; shift 2 ;;
	-h|--help) usage ;;
	--) shift; args+=("$@"); break ;;
	-*) echo "unknown option $1" >&2; usage ;;
	*) args+=("$1"); shift ;;
	esac
done
if [ ${#args[@]} -lt 1 ] || [ ${#args[@]} -gt 2 ]; then usage; fi
initrd=${args[0]}
kernel=${args[1]:-$OUT/build/arch/x86/boot/bzImage}
[ -f "$initrd" ] || { echo "no initramfs at $initrd (scripts/make-initramfs.sh makes one)" >&2; exit 2; }
[ -f "$kernel" ] || { echo "no kernel at $kernel" >&2; exit 2; }
command -v "$qemu" >/dev/null || { echo "no $qemu (apt-get install qemu-system-x86)" >&2; exit 2; }
if [ -n "$task" ]; then
	timeout=${timeout:-600}
	case $task in *[!A-Za-z0-9._-]*) echo "bad task name: $task" >&2; exit 2 ;; esac
fi
case ${timeout:-0} in *[!0-9]*) echo "bad timeout: $timeout" >&2; exit 2 ;; esac
log=${log:-$LOGDIR/vm-${task:-shell}.log}
mkdir -p "$(dirname "$log")"

# No oops=panic: an oops kills the offending process only, the task goes on
# and reports, and the splat check below fails the run anyway.  panic=-1 with
# -no-reboot makes a panic end QEMU at once instead of waiting for the timeout.
# no5lvl: with -cpu max TCG offers LA57, and a KASAN kernel (stock C and ours
# alike) then sometimes reports a wild access in an interrupt that lands while
# the boot CPU is being identified, 4 ms in, before any driver runs: 4-level
# paging avoids that flake.
# no_timer_check: under TCG on a busy host the IO-APIC timer check at 60 ms can
# miss its ticks, and with interrupt remapping on the kernel then panics ("timer
# doesn't work through Interrupt-remapped IO-APIC"); like many VM guests, ours skip
# the check.
iommu_dev=(-device intel-iommu,intremap=on,caching-mode=on)
iommu_arg=" intel_iommu=on"
if [ "$iommu" = none ]; then iommu_dev=(); iommu_arg=; fi
cmdline="console=ttyS0 panic=-1${iommu_arg} no5lvl no_timer_check${task:+ vmtask=$task}${append:+ $append}"
# intel-iommu comes first: QEMU wants it before the PCI devices it translates.
# edu sits alone behind a PCIe root port, so that it can be reset: it has neither
# function level nor PM reset, but a secondary bus reset of the port's bus
# reaches it and nothing else (VFIO_DEVICE_RESET, upstream's vfio_pci_device_test).
# -nic none: no NIC, so no option ROM to load and nothing on the network.
# shellcheck disable=SC2054 # (commas inside QEMU options)
cmd=("$qemu" -machine q35,accel=tcg,kernel-irqchip=split
	"${iommu_dev[@]}"
	-device pcie-root-port,id=rp0,chassis=1,slot=1 -device edu,bus=rp0
	-cpu max -smp 2 -m 2G -nic none
	-nographic -no-reboot
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	"${qemu_extra[@]}")

step "booting $(basename "$kernel") with $(basename "$initrd")${task:+, task $task}${timeout:+, timeout ${timeout}s} (log: $log)"
note "kernel command line: $cmdline"
start=$SECONDS
t0=$EPOCHREALTIME
since() { LC_ALL=C awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

if [ -z "$task" ]; then
	# Interactive: QEMU keeps the terminal; only a timeout is enforced, if asked.
	rc=0
	if [ "${timeout:-0}" -gt 0 ]; then
		timeout -k 10 "$timeout" "${cmd[@]}" | tee "$log" || rc=$?
	else
		"${cmd[@]}" | tee "$log" || rc=$?
	fi
	note "VM stopped after $(since "$t0")s"
	# The shell's exit status, when /init got to print it.
	m=$(grep -ao 'VM-TASK-EXIT [0-9]*' "$log" | tail -n 1 || true)
	[ -z "$m" ] || rc=${m#VM-TASK-EXIT }
	exit "$rc"
fi

# Batch: QEMU's console goes through a FIFO to the loop below, which copies
# it line by line to stdout and the log, notes the marker and watches the
# clock.  QEMU gets no input (nor the terminal: it could be a background job).
fifo=$(mktemp -u "${TMPDIR:-/tmp}/run-vm.XXXXXX")
mkfifo "$fifo"
qpid=
cleanup() {
	if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
	rm -f "$fifo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"${cmd[@]}" </dev/null >"$fifo" 2>&1 &
qpid=$!
exec 3<"$fifo" 4>"$log"

stop_qemu() { # asks QEMU to go, then makes it
	kill "$qpid" 2>/dev/null || return 0
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$qpid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -9 "$qpid" 2>/dev/null || true
}

# --timeout 0: no limit
deadline=$((timeout > 0 ? start + timeout : 1 << 62))
marker_rc='' grace_end='' timed_out=0 killed_after_marker=0 boot_s='' partial=''
on_line() {
	local line=${1%$'\r'}
	printf '%s\n' "$line"
	printf '%s\n' "$line" >&4
	case $line in
	*"VM-TASK-EXIT "*)
		local r=${line##*VM-TASK-EXIT }
		r=${r%% *}
		case $r in '' | *[!0-9]*) ;; *) marker_rc=$r; grace_end=$((SECONDS + 30)) ;; esac ;;
	*"vm-init: "*", task: "*) boot_s=$(since "$t0") ;;
	esac
}
check_clocks() {
	if [ "$SECONDS" -ge "$deadline" ]; then
		timed_out=1
		stop_qemu
	elif [ -n "$grace_end" ] && [ "$SECONDS" -ge "$grace_end" ]; then
		killed_after_marker=1
		stop_qemu
	fi
}
while :; do
	chunk=
	if IFS= read -r -t 2 chunk <&3; then
		on_line "$partial$chunk"
		partial=
	elif [ $? -gt 128 ]; then
		# No whole line for 2 s: keep what came.
		partial+=$chunk
	else
		# End of the console: QEMU is gone.
		[ -z "$partial$chunk" ] || on_line "$partial$chunk"
		break
	fi
	[ $timed_out = 1 ] || [ $killed_after_marker = 1 ] || check_clocks
done
qrc=0
wait "$qpid" || qrc=$?
qpid=
exec 3<&- 4>&-
elapsed=$(since "$t0")

# Kernel splats.  When the kernel stamps its lines with the time, only stamped
# lines count, so a test printing "WARNING:" cannot fail the run by itself;
# the stamp may sit anywhere in a line where the task's output got mixed in.
# kmemleak counts only for its report, not for its start-up messages; a task
# the hung-task detector reports (CONFIG_DETECT_HUNG_TASK) counts.
splat='(BUG:|WARNING:|Oops|KASAN|kmemleak:.*suspected memory leak|unreferenced object 0x|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|Kernel panic|UBSAN:|general protection fault|INFO: task .+ blocked for more than)'
if grep -qaE '^\[ *0\.0+\]' "$log"; then
	re="\[ *[0-9]+\.[0-9]+\](\[ *[CT][0-9]+\])? $splat"
else
	re="$splat"
fi
splats=$(grep -aE "$re" "$log" || true)

echo
[ -z "$boot_s" ] || note "booted to /init in ${boot_s}s"
note "VM ran ${elapsed}s (QEMU exit status $qrc)"
[ $killed_after_marker = 0 ] || note "the VM did not power off within 30s of its marker: killed"
status=
if [ -n "$splats" ]; then
	echo "kernel splats on the console ($(printf '%s\n' "$splats" | wc -l) lines):" >&2
	printf '%s\n' "$splats" | head -n 50 | sed 's/^/    /' >&2
	if [ $allow_splats = 0 ]; then
		echo "FAILED: task $task: kernel splats (see above; log: $log)" >&2
		status=3
	fi
fi
if [ $timed_out = 1 ]; then
	echo "FAILED: task $task: timed out after ${timeout}s; the VM was killed (log: $log)" >&2
	status=${status:-5}
elif [ -z "$marker_rc" ]; then
	echo "FAILED: task $task: the VM stopped without printing VM-TASK-EXIT (panic? log: $log)" >&2
	status=${status:-4}
fi
if [ -n "$status" ]; then exit "$status"; fi
if [ "$marker_rc" != 0 ]; then
	echo "FAILED: task $task exited with $marker_rc (log: $log)" >&2
else
	note "task $task passed"
fi
exit "$marker_rc"
