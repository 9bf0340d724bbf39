#!/bin/sh
# /init of the test VM's initramfs (built by scripts/make-initramfs.sh; runs
# under busybox sh).  Mounts the pseudo file systems, then runs the task named
# by `vmtask=NAME` on the kernel command line: /opt/tasks/NAME, with its output
# on the console.  Without vmtask= it starts a shell instead.  Either way it
# ends by printing `VM-TASK-EXIT <rc>` (what scripts/run-vm.sh waits for) and
# powering off.
#
# Other kernel command line switches:
#   vmkmemleak=0   skip the kmemleak scan after the task (on by default when
#                  the kernel has kmemleak: its auto scan is off in our config,
#                  so without this nothing would ever report a leak)
export PATH=/opt/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM="${TERM:-linux}"
umask 022

say() { echo "vm-init: $*"; }

mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }
mnt() { # mnt TYPE DIR [OPTIONS]: mounts unless already mounted
	mkdir -p "$2"
	mounted "$2" && return 0
	mount -t "$1" ${3:+-o "$3"} "$1" "$2" || say "could not mount $1 on $2"
}

mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
# These two only where the kernel has them.
grep -qw devpts /proc/filesystems && mnt devpts /dev/pts
grep -qw debugfs /proc/filesystems && mnt debugfs /sys/kernel/debug
mnt tmpfs /tmp mode=1777
mnt tmpfs /run mode=755
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
hostname vm

task='' kmemleak=1
for arg in $(cat /proc/cmdline); do
	case $arg in
	vmtask=*) task=${arg#vmtask=} ;;
	vmkmemleak=*) kmemleak=${arg#vmkmemleak=} ;;
	esac
done

say "$(uname -r), up $(cut -d' ' -f1 /proc/uptime)s, $(nproc) cpus, task: ${task:-<shell>}"

if [ -z "$task" ]; then
	# Interactive: a shell with a controlling tty (so ^C works).
	setsid cttyhack sh -l
	rc=$?
elif case $task in */* | .*) true ;; *) false ;; esac; then
	say "bad task name '$task'"
	rc=127
elif [ -f "/opt/tasks/$task" ]; then
	# The task gets no console input: one that reads stdin must not hang.
	if [ -x "/opt/tasks/$task" ]; then
		"/opt/tasks/$task" </dev/null 2>&1
	else
		sh "/opt/tasks/$task" </dev/null 2>&1
	fi
	rc=$?
else
	say "no task '$task' in /opt/tasks (there: $(ls /opt/tasks 2>/dev/null | tr '\n' ' '))"
	rc=127
fi
say "task ${task:-<shell>} exited with $rc, up $(cut -d' ' -f1 /proc/uptime)s"

# kmemleak reports only objects older than 5 s, so a leak of the task's last
# moments needs the wait; the kernel log then says "kmemleak: N new suspected
# memory leaks" and the file lists them.
leaks=/sys/kernel/debug/kmemleak
if [ "$kmemleak" != 0 ] && [ -w $leaks ]; then
	say "kmemleak scan"
	sleep 6
	echo scan >$leaks
	report=$(cat $leaks) # (debugfs files have no size to test)
	if [ -n "$report" ]; then
		say "kmemleak report:"
		echo "$report"
	fi
fi

sync
echo "VM-TASK-EXIT $rc"
poweroff -f
# poweroff -f does not return; if it does, halt here rather than let the
# kernel panic on init exiting (run-vm.sh kills the VM after the marker).
sleep 5
say "poweroff failed"
while :; do sleep 3600; done
