#!/usr/bin/env bash
# make-initramfs.sh OUTPUT.cpio.gz [EXTRA_DIR...]
#
# Builds the test VM's initramfs: a static busybox with a link for each of its
# applets, /init (scripts/vm-init.sh), /etc/passwd and /etc/group with root and
# nobody (65534), and every file of each EXTRA_DIR under /opt/<its name>/ with
# its layout kept (symbolic links are followed).  The VM runs /opt/tasks/NAME,
# so one of the directories is usually called tasks.
#
# Rebuilds only when an input changed (the list of inputs' hashes is kept
# beside the output as OUTPUT.inputs).  BUSYBOX=path picks another busybox.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 OUTPUT.cpio.gz [EXTRA_DIR...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
output=$(realpath -m "$1"); shift
BUSYBOX=${BUSYBOX:-/bin/busybox}
INIT=$ROOT/scripts/vm-init.sh

[ -x "$BUSYBOX" ] || { echo "no busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }
if readelf -lW "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
	echo "$BUSYBOX is dynamically linked; the initramfs needs a static one (busybox-static)" >&2
	exit 1
fi

# The extra directories: each goes to /opt/<basename>, and two must not share one.
declare -A seen=()
extras=()
for d in "$@"; do
	[ -d "$d" ] || { echo "not a directory: $d" >&2; exit 1; }
	d=$(realpath "$d")
	name=$(basename "$d")
	[ -z "${seen[$name]:-}" ] || { echo "two extra directories named $name: ${seen[$name]} and $d" >&2; exit 1; }
	seen[$name]=$d
	extras+=("$d")
done

# Everything the image is made of, hashed: skip the build when nothing changed.
inputs() {
	sha256sum "$0" "$INIT" "$BUSYBOX" | awk '{print $1}'
	local d
	for d in "${extras[@]}"; do
		echo "dir $(basename "$d")"
		(cd "$d" && find -L . -mindepth 1 -printf '%y %m %p\n' | LC_ALL=C sort)
		(cd "$d" && find -L . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
	done
}
want=$(inputs | sha256sum | awk '{print $1}')
stamp=$output.inputs
if [ -f "$output" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	note "initramfs up to date: $output"
	exit 0
fi

step "building the initramfs $output"
stage=$(mktemp -d "${TMPDIR:-/tmp}/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,opt,mnt,var/tmp}
chmod 1777 "$stage/tmp" "$stage/var/tmp"
chmod 700 "$stage/root"
cp "$BUSYBOX" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
n=0
for applet in $("$BUSYBOX" --list-full); do
	[ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] && continue
	mkdir -p "$stage/$(dirname "$applet")"
	ln -s /bin/busybox "$stage/$applet"
	n=$((n + 1))
done
install -m 755 "$INIT" "$stage/init"

cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'root::0:0:99999:7:::' >"$stage/etc/shadow"
echo 'nobody:*:0:0:99999:7:::' >>"$stage/etc/shadow"
chmod 600 "$stage/etc/shadow"
echo vm >"$stage/etc/hostname"
printf 'export PS1="vm:\\w# "\nexport PATH=/opt/bin:/bin:/sbin:/usr/bin:/usr/sbin\n' >"$stage/etc/profile"

for d in "${extras[@]}"; do
	dest=$stage/opt/$(basename "$d")
	mkdir -p "$dest"
	cp -RL --preserve=mode,timestamps "$d/." "$dest/"
	# A dynamically linked program would not run: there is no libc in here.
	while IFS= read -r -d '' f; do
		if readelf -lW "$f" 2>/dev/null | grep -q 'program interpreter'; then
			echo "warning: ${f#"$stage"} is dynamically linked and will not run in the VM" >&2
		fi
	done < <(find "$dest" -type f -perm /111 -print0)
	note "/opt/$(basename "$d"): $(find "$dest" -type f | wc -l) files from $d"
done

# The archive: the staged tree owned by root, then a second archive with
# /dev/console (the kernel opens it for /init's stdio before anything can
# mount devtmpfs; written by hand since making the node needs root).  The
# kernel unpacks concatenated archives in order.
newc() { # newc NAME MODE RDEVMAJOR RDEVMINOR: one empty newc entry
	local name=$1 namesize=$((${#1} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	# header (110 bytes) + name, padded to a multiple of 4
	local pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
}
tmp=$output.tmp
mkdir -p "$(dirname "$output")"
find "$stage" -exec touch -h -d @0 {} +
{
	(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet)
	newc dev/console $((8#20600)) 5 1
	newc TRAILER!!! 0 0 0
} | gzip -n -6 >"$tmp"
mv "$tmp" "$output"
echo "$want" >"$stamp"
note "$(du -h "$output" | cut -f1) (busybox with $n applet links): $output"
