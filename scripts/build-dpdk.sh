#!/usr/bin/env bash
# Packs DPDK's testpmd for the test VM, from Debian 12's own packages (DPDK
# 22.11): fetched with `apt-get download` into $OUT/dpdk/debs (nothing is
# installed on the host), unpacked, and the ELF closure laid out as
#   $OUT/dpdk/opt/dpdk/bin/dpdk-testpmd   (mode 644: run through the loader)
#   $OUT/dpdk/opt/dpdk/lib/               every shared library it needs, and
#                                         the dynamic loader ld-linux-x86-64.so.2
#   $OUT/dpdk/opt/dpdk/pmds/              the plugins loaded with -d (as *.so:
#                                         EAL loads only *.so and *.so.23.0 from a
#                                         directory): the e1000
#                                         and virtio PMDs and the ring mempool
# make-initramfs.sh puts the last directory at /opt/dpdk in the VM, which has
# no libc: the task runs `/opt/dpdk/lib/ld-linux-x86-64.so.2 --library-path
# /opt/dpdk/lib /opt/dpdk/bin/dpdk-testpmd ...`.
#
# The packages needed are found from the ELF files themselves: starting from
# dpdk-dev (testpmd's package) and the plugins' packages, every package owning
# a file whose DT_NEEDED is still missing has its Depends fetched, until every
# soname is there.  Prints the directory on its last line.  A second run with
# the same package versions does nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

D=$OUT/dpdk
DEBS=$D/debs
ROOTFS=$D/root
DEST=$D/opt/dpdk
SEED=(dpdk-dev librte-net-e1000-23 librte-net-virtio23 librte-mempool-ring23)
PMDS=(librte_net_e1000 librte_net_virtio librte_mempool_ring)
# Never needed for the ELF closure: testpmd's headers and scripts.
SKIP='^(libdpdk-dev|python3.*|perl.*|debconf|dpkg|adduser|lsb-base|init-system-helpers)$'
mkdir -p "$DEBS"

command -v apt-get >/dev/null || { echo "no apt-get: DPDK comes from Debian's packages" >&2; exit 1; }

# Package lists without DPDK (a machine where install-deps.sh found nothing
# to install, so never ran apt-get update): update them.
if ! apt-cache policy dpdk-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	run_logged dpdk-apt-update apt-get update -q
fi

# The versions apt would fetch now, so a run with nothing new does nothing.
stamp=$D/.stamp
want=$( (sha256sum "$0" | cut -d' ' -f1; apt-cache policy "${SEED[@]}" 2>/dev/null | grep -E '^\S|Candidate') | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$DEST/bin/dpdk-testpmd" ]; then
	note "DPDK for the VM up to date: $DEST"
	echo "$DEST"
	exit 0
fi

step "fetching DPDK 22.11 from Debian's packages into $DEBS"
declare -A fetched=()
fetch() { # fetch PKG...: apt-get download those not fetched yet, unpack them
	local p new=()
	for p in "$@"; do
		[[ $p =~ $SKIP ]] && continue
		[ -n "${fetched[$p]:-}" ] && continue
		fetched[$p]=1
		new+=("$p")
	done
	[ ${#new[@]} -gt 0 ] || return 0
	(cd "$DEBS" && run_logged dpdk-download apt-get download "${new[@]}")
	for p in "${new[@]}"; do
		local deb
		deb=$(ls -t "$DEBS/${p}_"*.deb | head -n 1)
		dpkg-deb -x "$deb" "$ROOTFS"
		dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$D/files/$p"
	done
}
depends() { # depends PKG: its Depends, first of each alternative, no versions
	apt-cache show --no-all-versions "$1" | sed -n 's/^Depends: //p' | tr ',' '\n' |
		sed 's/|.*//;s/(.*)//;s/:any//;s/ //g' | grep -v '^$' || true
}
rm -rf "$ROOTFS" "$D/files" "$DEST"
mkdir -p "$ROOTFS" "$D/files"
fetch "${SEED[@]}" libc6

LIBDIRS=("$ROOTFS/usr/lib/x86_64-linux-gnu" "$ROOTFS/lib/x86_64-linux-gnu")
find_lib() { # find_lib SONAME: its path in the unpacked tree
	local d
	for d in "${LIBDIRS[@]}"; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}
pmddir=$(find "$ROOTFS/usr/lib/x86_64-linux-gnu/dpdk" -maxdepth 1 -type d -name 'pmds-*' | head -n 1)
[ -n "$pmddir" ] || { echo "no DPDK plugin directory in the packages" >&2; exit 1; }

# The closure: files to copy, and sonames not found yet (with who needs them).
for round in 1 2 3 4 5 6 7 8; do
	declare -A have=() missing=()
	queue=("$ROOTFS/usr/bin/dpdk-testpmd")
	for p in "${PMDS[@]}"; do queue+=("$(readlink -f "$pmddir/$p.so.23")"); done
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}; queue=("${queue[@]:1}")
		for so in $(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			[ -n "${have[$so]:-}" ] && continue
			if p=$(find_lib "$so"); then
				have[$so]=$p
				queue+=("$(readlink -f "$p")")
			else
				missing[$so]=$f
			fi
		done
	done
	[ ${#missing[@]} -eq 0 ] && break
	# The packages of the files that need a missing soname: fetch their Depends.
	owners=()
	for so in "${!missing[@]}"; do
		rel=${missing[$so]#"$ROOTFS"}
		owners+=($(grep -lxF -- "$rel" "$D"/files/* | xargs -r -n1 basename))
	done
	more=()
	owners=($(printf "%s\n" "${owners[@]}" | sort -u))
	for p in "${owners[@]}"; do more+=($(depends "$p")); done
	note "round $round: ${#missing[@]} sonames missing (${!missing[*]}); fetching the Depends of ${owners[*]}"
	before=${#fetched[@]}
	fetch "${more[@]}"
	if [ ${#fetched[@]} = "$before" ]; then
		echo "cannot find ${!missing[*]} in Debian's packages" >&2
		exit 1
	fi
done
[ ${#missing[@]} -eq 0 ] || { echo "still missing: ${!missing[*]}" >&2; exit 1; }

mkdir -p "$DEST/bin" "$DEST/lib" "$DEST/pmds"
install -m 644 "$ROOTFS/usr/bin/dpdk-testpmd" "$DEST/bin/"
for so in "${!have[@]}"; do install -m 644 "$(readlink -f "${have[$so]}")" "$DEST/lib/$so"; done
install -m 755 "$(readlink -f "$(find_lib ld-linux-x86-64.so.2)")" "$DEST/lib/ld-linux-x86-64.so.2"
for p in "${PMDS[@]}"; do install -m 644 "$(readlink -f "$pmddir/$p.so.23")" "$DEST/pmds/$p.so"; done
ls "$DEBS" | sed -n 's/_amd64\.deb$//p;s/_all\.deb$//p' >"$DEST/PACKAGES"
echo "$want" >"$stamp"
note "testpmd, $(ls "$DEST/lib" | wc -l) libraries ($(du -sh "$DEST" | cut -f1)) from ${#fetched[@]} packages: $DEST"
echo "$DEST"
