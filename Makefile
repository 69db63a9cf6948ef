# SPDX-License-Identifier: GPL-2.0
#
#   make              build the module against the cached test kernel
#   make KDIR=<tree>  build it against any Rust-enabled kernel tree
#   make demo         install, build, boot a guest and show the driver at work
#   make check        install, build, run the whole test suite in a guest
#   make lint         rustfmt and clippy (the kernel's lint set) over the driver
#   make buildcheck   build and lint the module and the test modules against
#                     a tree prepared only for modules (no guest, no tests)
#   KERNEL=7.3|6.12   which kernel (default 7.3), for every target
#   make soak         the same suite with its long loops (about 46 min, not CI)
#   make bench        benchmarks, Rust driver against the C driver, on a
#                     production-configured kernel built from the same source
#                     (BENCH_ARGS="--rounds N --kvm" to change the defaults;
#                     BENCH_FLAVOUR=test: on the debug test kernel instead)
#   make profile      instructions the guest executes per operation with
#                     each driver, and in which functions (a QEMU plugin;
#                     the same kernel as make bench)
#   ARCH=arm64        module, demo and check on an arm64 guest (QEMU's virt
#                     machine, emulated): its kernel cross-built here, the
#                     module, test modules and vgpio-bench built for it in
#                     out/build-$(KERNEL)-arm64; devices on virtio-mmio
#                     (VGPIO_TRANSPORT=pci for virtio-pci)

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export PATH := /usr/bin:$(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(HOME)/.cargo/bin:$(PATH)

# Nothing here may be computed when the Makefile is parsed: on a new machine
# the tools the kernel's cache key hashes (rustc, bindgen, clang, vng) do not
# exist until the `deps` prerequisite has installed them. The kernel tree's
# path and bindgen's are therefore looked up by the shell, in each recipe.
ifeq ($(origin KDIR),undefined)
KDIR_SH := $$($(TOP)/scripts/kernel.sh dir)
KERNEL_DEP := kernel
else
KDIR_SH := $(KDIR)
endif
# Which kernel: 7.3 (current stable, default) or 6.12 (the LTS); scripts/kernel.sh knows each
# one's source and toolchain.
KERNEL ?= 7.3
export KERNEL
KMAKE = env $$($(TOP)/scripts/kernel.sh env) $(MAKE) -C "$(KDIR_SH)" $$($(TOP)/scripts/kernel.sh make-args)
# A command-line ARCH=arm64 goes to the scripts as VGPIO_ARCH (the
# kernel's make gets ARCH from scripts/kernel.sh make-args, and from
# MAKEFLAGS); it is kept out of the programs' environment (cargo builds
# the simulator for this host).
ifeq ($(origin ARCH),command line)
ifeq ($(ARCH),arm64)
export VGPIO_ARCH := arm64
else ifneq ($(filter x86 x86_64,$(ARCH)),)
export VGPIO_ARCH := x86_64
else
$(error ARCH=$(ARCH): x86_64 (default) or arm64)
endif
unexport ARCH
endif
# Where the module's sources are built: the work tree, or a copy of it
# (scripts/lint.sh --copy, for a kernel the work tree's .ko is not for;
# for arm64, a copy the guest finds them in: VGPIO_BUILD).
ifeq ($(VGPIO_ARCH),arm64)
ifeq ($(origin MODSRC),undefined)
MODSRC := $(TOP)/out/build-$(KERNEL)-arm64
SRCCOPY := srccopy
endif
export VGPIO_BUILD := $(MODSRC)
# static: a process start in the guest reads nothing more over 9p
BENCH_BIN := $(MODSRC)/bench/vgpio-bench
BENCH_CC := aarch64-linux-gnu-gcc -static
# (the cross compiler comes with the dependencies)
BENCH_DEPS := deps
LINT_COPY := $(TOP)/out/lint-$(KERNEL)-arm64
ifneq ($(filter bench bench-build profile,$(MAKECMDGOALS)),)
$(error make bench and make profile: x86_64 only)
endif
else
MODSRC ?= $(TOP)
BENCH_BIN := $(TOP)/bench/vgpio-bench
BENCH_CC := gcc
endif
SIM := $(TOP)/sim/target/release/virtio-gpio-sim

.PHONY: all modules deps kernel sim testmods tools demo check lint buildcheck soak bench bench-build profile clean srccopy

all: modules

# (once per make)
srccopy:
	$(TOP)/scripts/modsrc.sh $(MODSRC)

modules: $(KERNEL_DEP) $(SRCCOPY)
	$(KMAKE) M=$(MODSRC) CONFIG_GPIO_VIRTIO_RS=m modules

deps:
	$(TOP)/scripts/install-deps.sh

kernel: deps
	$(TOP)/scripts/kernel.sh build

sim: deps
	cargo build --release --quiet --manifest-path $(TOP)/sim/Cargo.toml

testmods: $(KERNEL_DEP) $(SRCCOPY)
	$(KMAKE) M=$(MODSRC)/tests/modules modules

tools: $(BENCH_BIN)

$(BENCH_BIN): $(TOP)/bench/vgpio-bench.c | $(BENCH_DEPS)
	mkdir -p $(dir $@)
	$(BENCH_CC) -O2 -Wall -pthread -o $@ $<

demo: deps kernel modules sim testmods
	$(TOP)/scripts/demo.sh

check: deps kernel modules sim testmods tools
	$(TOP)/scripts/check.sh

lint: deps $(KERNEL_DEP)
	KDIR="$(KDIR_SH)" $(TOP)/scripts/lint.sh $(if $(LINT_COPY),--copy $(LINT_COPY))

buildcheck: deps
	$(TOP)/scripts/kernel.sh prepare
	$(TOP)/scripts/lint.sh --copy $(or $(LINT_COPY),$(TOP)/out/build-$(KERNEL))

soak: deps kernel modules sim testmods tools
	$(TOP)/scripts/check.sh --soak

# The benchmark kernel (scripts/kernel.sh's FLAVOUR) and the modules built
# for it in a copy of the sources, so the work tree's .ko stays the test
# kernel's.
BENCH_FLAVOUR ?= prod
BENCH_BUILD = $(TOP)/out/build-$(KERNEL)-$(BENCH_FLAVOUR)
bench-build: deps sim tools
	FLAVOUR=$(BENCH_FLAVOUR) $(TOP)/scripts/kernel.sh build
	$(TOP)/scripts/modsrc.sh $(BENCH_BUILD)
	FLAVOUR=$(BENCH_FLAVOUR) $(MAKE) -C $(TOP) MODSRC=$(BENCH_BUILD) modules testmods

bench: bench-build
	FLAVOUR=$(BENCH_FLAVOUR) $(TOP)/scripts/bench.sh --build $(BENCH_BUILD) $(BENCH_ARGS)

# Instructions per operation, both drivers, on the benchmark kernel
# (scripts/profile.sh; PROFILE_ARGS="--ops N").
profile: bench-build
	FLAVOUR=$(BENCH_FLAVOUR) $(TOP)/scripts/profile.sh --build $(BENCH_BUILD) $(PROFILE_ARGS)

clean:
	$(KMAKE) M=$(TOP) clean
	$(KMAKE) M=$(TOP)/tests/modules clean
	rm -rf $(TOP)/out $(TOP)/bench/vgpio-bench
