#!/usr/bin/env bash
# Installs what the build and the VM need on a Debian 12 x86_64 host, and skips
# what is already there.  Safe to run again: every step checks first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev bc bison flex libelf-dev libssl-dev
      cpio xz-utils busybox-static qemu-system-x86 make gcc libc6-dev rsync kmod
      python3 dwarves libcap-dev uuid-dev)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	step "apt-get install ${missing[*]}"
	run_logged apt-update apt-get update -q
	DEBIAN_FRONTEND=noninteractive run_logged apt-install apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	note "apt packages: all present"
fi

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	step "rustup component add rust-src"
	run_logged rust-src rustup component add rust-src
else
	note "rust-src: present"
fi

if ! bindgen --version 2>/dev/null | grep -q '0\.72\.1'; then
	step "cargo install bindgen-cli 0.72.1 (a few minutes)"
	run_logged bindgen cargo install bindgen-cli --version 0.72.1 --locked
else
	note "bindgen-cli 0.72.1: present"
fi
