# Shared helpers for the build scripts: progress lines and logged steps.
# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
OUT=${OUT:-$ROOT/out}
LOGDIR=$OUT/logs
mkdir -p "$LOGDIR"
export PATH=$HOME/.cargo/bin:$PATH

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# run_logged NAME CMD...: runs CMD with its output in $LOGDIR/NAME.log; on
# failure prints the log's tail and where the whole log is, then fails.
run_logged() {
	local name=$1; shift
	local log=$LOGDIR/$name.log
	if ! "$@" >"$log" 2>&1; then
		echo "FAILED: $name ($*)" >&2
		tail -n 30 "$log" >&2
		echo "full log: $log" >&2
		return 1
	fi
}

# wait_for PID SECS: true once PID has exited, false if it still runs after SECS.
wait_for() {
	local i
	for ((i = 0; i < $2; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 1
	done
	! kill -0 "$1" 2>/dev/null
}

# our_warnings LOG: the rustc and clippy warnings and errors of a kernel build
# log that point into our code (iommufd, VFIO, the kernel-crate files we add).
# rustc names files by their absolute path in an O= build, hence the prefix.
our_warnings() {
	local files
	files=$(cd "$ROOT" && git ls-files 'rust/kernel/*.rs' | grep -v '\.patch$' | sed 's/\./\\./g' | paste -sd'|')
	grep -E -A3 '^(warning|error)' "$1" |
		grep -E -- "--> ([^ ]*/)?(drivers/iommu/iommufd/|drivers/vfio/|${files:-none})" || true
}
