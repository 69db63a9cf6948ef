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
# Where the module's sources are built: the work tree, or a copy of it
# (scripts/lint.sh --copy, for a kernel the work tree's .ko is not for).
MODSRC ?= $(TOP)
SIM := $(TOP)/sim/target/release/virtio-gpio-sim

.PHONY: all modules deps kernel sim testmods tools demo check lint buildcheck soak bench clean

all: modules

modules: $(KERNEL_DEP)
	$(KMAKE) M=$(MODSRC) CONFIG_GPIO_VIRTIO_RS=m modules

deps:
	$(TOP)/scripts/install-deps.sh

kernel: deps
	$(TOP)/scripts/kernel.sh build

sim: deps
	cargo build --release --quiet --manifest-path $(TOP)/sim/Cargo.toml

testmods: $(KERNEL_DEP)
	$(KMAKE) M=$(MODSRC)/tests/modules modules

tools: $(TOP)/bench/vgpio-bench

$(TOP)/bench/vgpio-bench: $(TOP)/bench/vgpio-bench.c
	gcc -O2 -Wall -pthread -o $@ $<

demo: deps kernel modules sim testmods
	$(TOP)/scripts/demo.sh

check: deps kernel modules sim testmods tools
	$(TOP)/scripts/check.sh

lint: deps $(KERNEL_DEP)
	KDIR="$(KDIR_SH)" $(TOP)/scripts/lint.sh

buildcheck: deps
	$(TOP)/scripts/kernel.sh prepare
	$(TOP)/scripts/lint.sh --copy $(TOP)/out/build-$(KERNEL)

soak: deps kernel modules sim testmods tools
	$(TOP)/scripts/check.sh --soak

# The benchmark kernel (scripts/kernel.sh's FLAVOUR) and the modules built
# for it in a copy of the sources, so the work tree's .ko stays the test
# kernel's.
BENCH_FLAVOUR ?= prod
BENCH_BUILD = $(TOP)/out/build-$(KERNEL)-$(BENCH_FLAVOUR)
bench: deps sim tools
	FLAVOUR=$(BENCH_FLAVOUR) $(TOP)/scripts/kernel.sh build
	$(TOP)/scripts/modsrc.sh $(BENCH_BUILD)
	FLAVOUR=$(BENCH_FLAVOUR) $(MAKE) -C $(TOP) MODSRC=$(BENCH_BUILD) modules testmods
	FLAVOUR=$(BENCH_FLAVOUR) $(TOP)/scripts/bench.sh --build $(BENCH_BUILD) $(BENCH_ARGS)

clean:
	$(KMAKE) M=$(TOP) clean
	$(KMAKE) M=$(TOP)/tests/modules clean
	rm -rf $(TOP)/out $(TOP)/bench/vgpio-bench
