# iommufd and VFIO in Rust: build, boot and test.
#
#   make run    build everything and run the demo in a VM
#   make test   run every test; ends with "N passed, N failed"
#
# Everything is built under out/ (set OUT= to move it).

SHELL := /bin/bash
export ROOT := $(CURDIR)
export OUT ?= $(CURDIR)/out

.PHONY: all run test deps source tree kernel userspace initramfs clean bench

all: run

deps:
	@scripts/install-deps.sh

source: deps
	@scripts/get-kernel-source.sh >$(OUT)/.source-path || { echo "no kernel source"; exit 1; }

tree: source
	@scripts/prepare-tree.sh "$$(tail -n 1 $(OUT)/.source-path)"

kernel: tree
	@scripts/build-kernel.sh

userspace: kernel
	@scripts/build-userspace.sh

initramfs: userspace
	@scripts/make-initramfs.sh $(OUT)/initramfs.cpio.gz $(OUT)/userspace/opt/*

run: initramfs
	@scripts/run-vm.sh --task demo $(OUT)/initramfs.cpio.gz $(OUT)/build/arch/x86/boot/bzImage

test: deps
	@scripts/run-tests.sh

# Not part of test: map/unmap timings, our kernel against the stock C 7.3,
# both built for it (BENCH_CONFIG=release, the default, or debug).
bench: tree
	@scripts/bench.sh

clean:
	rm -rf $(OUT)/build $(OUT)/linux $(OUT)/userspace $(OUT)/initramfs.cpio.gz
