#!/usr/bin/env bash
# Finds the Linux 7.3 source tree to build against and unpacks it once under
# out/src.  In order: $KERNEL_SRC (a tree you already have); Debian's newest
# linux-source-7.3 package, fetched through a private apt configuration that
# names trixie-backports and sid (the system's apt sources are left alone);
# the tarball in ../shared/kernel after its sha256 is checked.
# Prints the path of the pristine tree on its last line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRCDIR=$OUT/src
SHARED=${SHARED:-$ROOT/../shared/kernel}
mkdir -p "$SRCDIR"

if [ -n "${KERNEL_SRC:-}" ]; then
	[ -f "$KERNEL_SRC/Makefile" ] || { echo "KERNEL_SRC=$KERNEL_SRC is not a kernel tree" >&2; exit 1; }
	note "kernel source: KERNEL_SRC=$KERNEL_SRC" >&2
	echo "$KERNEL_SRC"
	exit 0
fi

# unpack TARBALL ID: unpacks a linux-source tarball unless the same one is
# already unpacked.
unpack() {
	local tarball=$1 id=$2 tree=$SRCDIR/linux-source-7.3
	if [ "$(cat "$SRCDIR/source-id" 2>/dev/null)" != "$id" ] || [ ! -f "$tree/Makefile" ]; then
		step "unpacking $id" >&2
		rm -rf "$tree" "$SRCDIR/source-id"
		tar -C "$SRCDIR" -xf "$tarball"
		echo "$id" >"$SRCDIR/source-id"
	fi
	echo "$tree"
}

# Debian's package, through a private apt state under out/apt.
debian_source() {
	local apt=$OUT/apt keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
	cat >"$apt/sources.list" <<SRC
deb [signed-by=$keyring] http://deb.debian.org/debian trixie-backports main
deb [signed-by=$keyring] http://deb.debian.org/debian sid main
SRC
	local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
		-o APT::Get::List-Cleanup=0 -o Acquire::Retries=2)
	# The package lists are refreshed at most once a day.
	if [ -z "$(find "$apt/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
		timeout 300 apt-get "${opts[@]}" -q update >"$LOGDIR/apt-private.log" 2>&1 || return 1
	fi
	local ver
	ver=$(apt-cache "${opts[@]}" madison linux-source-7.3 2>/dev/null |
		awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -V | tail -n 1)
	[ -n "$ver" ] || return 1
	local deb=$apt/debs/linux-source-7.3_${ver}_all.deb
	if [ ! -s "$deb" ]; then
		(cd "$apt/debs" && timeout 900 apt-get "${opts[@]}" -q download "linux-source-7.3=$ver") \
			>>"$LOGDIR/apt-private.log" 2>&1 || return 1
		deb=$(ls "$apt"/debs/linux-source-7.3_*"${ver#*:}"*_all.deb | head -n 1)
	fi
	local id="debian linux-source-7.3 $ver"
	if [ "$(cat "$SRCDIR/source-id" 2>/dev/null)" != "$id" ]; then
		dpkg-deb --fsys-tarfile "$deb" | tar -C "$apt" -x ./usr/src/linux-source-7.3.tar.xz
	fi
	note "kernel source: $id" >&2
	unpack "$apt/usr/src/linux-source-7.3.tar.xz" "$id"
}

shared_source() {
	local tarball=$SHARED/linux-source-7.3.tar.xz
	[ -f "$tarball" ] || { echo "no kernel source: no KERNEL_SRC, no Debian package, no $tarball" >&2; return 1; }
	(cd "$SHARED" && sha256sum --quiet -c SHA256SUMS) >/dev/null 2>&1 ||
		{ echo "$tarball does not match $SHARED/SHA256SUMS" >&2; return 1; }
	local id
	id="shared tarball $(cut -c1-16 "$SHARED/SHA256SUMS")"
	note "kernel source: ../shared/kernel/linux-source-7.3.tar.xz (sha256 checked)" >&2
	unpack "$tarball" "$id"
}

debian_source || { note "Debian's linux-source-7.3 not reachable (see $LOGDIR/apt-private.log); using the shared tarball" >&2; shared_source; }
