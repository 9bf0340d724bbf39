#!/usr/bin/env bash
# Test step: the host unit tests (see src/lib.rs), as TAP: one point per test,
# from `cargo test`'s own list of results.  Offline: the crate has no
# dependencies.  The build goes to $OUT/host-units.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${OUT:-$here/../../../out}/host-units
out=$(cargo test --offline --manifest-path "$here/Cargo.toml" --target-dir "$target" 2>&1)
rc=$?
echo "TAP version 13"
results=$(printf '%s\n' "$out" | sed -n -E 's/^test (.*) \.\.\. (ok|FAILED|ignored)$/\2 \1/p')
if [ -z "$results" ]; then
	echo "not ok - cargo test ran the host unit tests"
	printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
	exit 0
fi
printf '%s\n' "$results" | while read -r res name; do
	case $res in
	ok) echo "ok - $name" ;;
	ignored) echo "ok - $name # SKIP ignored" ;;
	*) echo "not ok - $name" ;;
	esac
done
[ $rc = 0 ] || printf '%s\n' "$out" | grep -E -A15 '^---- ' | head -n 60 | sed 's/^/# /'
exit 0
