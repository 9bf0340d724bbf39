#!/usr/bin/env bash
# Fetches QEMU 10 for the igb VM of `make test`: Debian's qemu-system-x86 from
# bookworm-backports, through a private apt configuration under $OUT/apt-qemu
# (the system's apt sources are left alone), downloaded with `apt-get download`
# and unpacked with `dpkg-deb -x` into $OUT/qemu10 (nothing is installed).
# QEMU 7.2, the system's, has no igb; QEMU 10 has, and its libraries are those
# of Debian 12. Start it with -L $OUT/qemu10/usr/share/qemu (its firmware
# links point into the system's seabios and ipxe-qemu packages).
# Prints the QEMU binary on its last line. A second run with the same version
# does nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

apt=$OUT/apt-qemu dest=$OUT/qemu10
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
pkgs=(qemu-system-x86 qemu-system-common qemu-system-data)
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
echo "deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-backports main" >"$apt/sources.list"
opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
	-o APT::Get::List-Cleanup=0 -o Acquire::Retries=2)
# The package lists are refreshed at most once a day.
if [ -z "$(find "$apt/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
	run_logged qemu10-apt-update timeout 300 apt-get "${opts[@]}" -q update
fi
ver=$(apt-cache "${opts[@]}" madison qemu-system-x86 | awk -F'|' '{gsub(/ /,"",$2); print $2}' |
	grep '^1:10\.' | sort -V | tail -n 1)
[ -n "$ver" ] || { echo "no QEMU 10 in bookworm-backports" >&2; exit 1; }
bin=$dest/usr/bin/qemu-system-x86_64
if [ "$(cat "$dest/.version" 2>/dev/null)" != "$ver" ] || [ ! -x "$bin" ]; then
	step "fetching QEMU $ver from bookworm-backports into $dest"
	rm -rf "$dest" "$apt/debs"/*.deb
	(cd "$apt/debs" && run_logged qemu10-download timeout 900 apt-get "${opts[@]}" -q download \
		"${pkgs[@]/%/=$ver}")
	for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
	echo "$ver" >"$dest/.version"
fi
"$bin" --version | head -n 1 >&2
echo "$bin"
