# SPDX-License-Identifier: GPL-2.0-only
#
# Shared by the suites' Makefiles (plain make, not the kernel's lib.mk).
# A suite sets TEST_PROGS (one NAME.c each) and optionally LOCAL_HDRS
# (headers its programs include), then includes this file. It builds
# static test binaries:
#
#   make -C tools/testing/selftests/<suite> OUTPUT=DIR \
#        KHDR_INCLUDES=-I<installed uapi headers>/include \
#        KSELFTEST_DIR=<kernel>/tools/testing/selftests
#
# KHDR_INCLUDES comes first so that the 7.3 uapi headers win over the
# system's; KSELFTEST_DIR provides kselftest_harness.h and kselftest.h.

COMMON_MK := $(lastword $(MAKEFILE_LIST))
TOPDIR := $(abspath $(dir $(COMMON_MK))/../../..)

OUTPUT ?= $(CURDIR)
KHDR_INCLUDES ?= -I$(TOPDIR)/out/headers/include
KSELFTEST_DIR ?= $(TOPDIR)/out/src/linux-source-7.3/tools/testing/selftests

ifeq ($(origin CC),default)
CC := gcc
endif
CFLAGS ?= -O2
CFLAGS += -static -Wall -pthread
CPPFLAGS += $(KHDR_INCLUDES) -I$(KSELFTEST_DIR)
LDFLAGS += -static -pthread

BINARIES := $(addprefix $(OUTPUT)/,$(TEST_PROGS))
HEADERS := $(KSELFTEST_DIR)/kselftest_harness.h $(KSELFTEST_DIR)/kselftest.h \
	   $(LOCAL_HDRS)

.PHONY: all clean run_tests

all: $(BINARIES)

$(OUTPUT)/%: %.c $(HEADERS) Makefile $(COMMON_MK)
	@mkdir -p $(OUTPUT)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LDFLAGS) $(LDLIBS) -o $@

run_tests: all
	@rc=0; for t in $(BINARIES); do $$t || rc=1; done; exit $$rc

clean:
	rm -f $(BINARIES)
