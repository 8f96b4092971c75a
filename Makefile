# pristine - diskless boot server.  Plain GNU make; see README.md.
#
#   make          build/pristined and build/pristinectl (release, -O2)
#   make asan     the same under AddressSanitizer + UBSan in build/asan/
#   make run      install what building and running need, build, make the demo
#                 disk if none, start the daemon (demo/run.sh; STATE=, LISTEN=,
#                 BOOT_LISTEN= override ./state, *:3260, *:8180)
#   make demo-pc  install QEMU, iPXE and OVMF, start a demo PC against
#                 `make run` (demo/pc.sh; UEFI=1 for UEFI, PC=N for another PC)
#   make check    install test dependencies, build everything, run all tests
#   make deps     install the Debian packages needed (no-op when present)

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Isrc -I/usr/include/isa-l
ALL_CFLAGS = -std=gnu11 $(WARN) -pthread $(CFLAGS)
# -lrbd -lrados: golden images on Ceph RBD (src/storage/rbd.c).
# -lsodium: the console's password hash (Argon2id); -lgnutls: its
# self-signed certificate (libmicrohttpd does the TLS with GnuTLS).
LDLIBS  = -lisal -lmicrohttpd -ljansson -linih -lsystemd -lnettle -lrbd -lrados -lsodium -lgnutls -pthread
CTL_LDLIBS = -lcurl -ljansson

# PRISTINE_DEBUG: PR_ASSERT checks (src/util/check.h) in the sanitizer and
# fuzz builds only, never in the release build.
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DPRISTINE_DEBUG

# Every module but the two programs' entry points.
LIB_SRC = $(wildcard src/util/*.c src/storage/*.c src/scsi/*.c src/proto/*.c src/lab/*.c src/admin/*.c src/boot/*.c) \
          $(wildcard src/cluster/*.c) $(wildcard src/console/*.c) \
          $(filter-out src/daemon/main.c,$(wildcard src/daemon/*.c))
# The web console's files (web/), compiled into the daemon by
# tools/embed_assets.c (plain C: the `make run` box may have no python3).
WEB_FILES = $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
LIB_SRC += $(BUILD)/gen/console_assets.c
D_SRC   = src/daemon/main.c
CTL_SRC = $(wildcard src/ctl/*.c)
UNIT_SRC = $(wildcard tests/unit/test_*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
ALIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/asan/obj/%.o)

.PHONY: all asan run demo-pc check deps unit clean install fuzz fuzz-build
all: $(BUILD)/pristined $(BUILD)/pristinectl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tools/embed_assets: tools/embed_assets.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -o $@ $<

$(BUILD)/gen/console_assets.c: $(BUILD)/tools/embed_assets $(WEB_FILES) web
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed_assets $@ $(WEB_FILES)

$(BUILD)/pristined: $(LIB_OBJ) $(BUILD)/obj/$(D_SRC:.c=.o)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/pristinectl: $(CTL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/util/log.o $(BUILD)/obj/src/util/parse.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CTL_LDLIBS)

asan: $(BUILD)/asan/pristined $(BUILD)/asan/rbd_disk_check $(BUILD)/asan/rbd_lock_holder \
      $(BUILD)/asan/ovl_ceph_check
$(BUILD)/asan/pristined: $(ALIB_OBJ) $(BUILD)/asan/obj/$(D_SRC:.c=.o)
	$(CC) -pthread $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# storage/rbd_disk.h against a real cluster (tests/ceph/test_rbd_disk.sh).
$(BUILD)/asan/rbd_disk_check: tests/ceph/rbd_disk_check.c tests/ceph/check_util.c $(ALIB_OBJ) tests/ceph/check_util.h
	$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(SAN_FLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# storage/ovl_ceph.h against a real cluster (tests/ceph/test_ovl_ceph.sh).
$(BUILD)/asan/ovl_ceph_check: tests/ceph/ovl_ceph_check.c tests/ceph/check_util.c $(ALIB_OBJ) tests/ceph/check_util.h
	$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(SAN_FLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# A second client holding an image's lock (tests/ceph/test_rbd_kill.sh).
$(BUILD)/asan/rbd_lock_holder: tests/ceph/rbd_lock_holder.c
	$(CC) -std=gnu11 $(WARN) $(SAN_FLAGS) -o $@ $^ -lrbd -lrados

# PCs that flush after every write, timed across a gateway's death
# (tests/cluster/); plain libiscsi.
asan: $(BUILD)/asan/flushwriter
$(BUILD)/asan/flushwriter: tests/cluster/flushwriter.c
	$(CC) -std=gnu11 $(WARN) -pthread $(SAN_FLAGS) -o $@ $^ -liscsi

# C unit tests (cmocka), built with sanitizers against the library objects.
$(BUILD)/asan/unit/%: tests/unit/%.c $(ALIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_SRC:tests/unit/%.c=$(BUILD)/asan/unit/%) $(BUILD)/release-unit/test_check

# test_check once more against the release objects (no PRISTINE_DEBUG):
# there the same broken map and unsynced log append must not abort, and
# PR_ASSERT must not evaluate its condition.
$(BUILD)/release-unit/test_check: tests/unit/test_check.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	@sh tests/lib/deps.sh

# The build runs in a sub-make, after the install, so that the compiler
# sees the headers just installed.
run:
	@sh tests/lib/deps.sh run
	@$(MAKE) --no-print-directory all
	@sh demo/run.sh

demo-pc:
	@sh tests/lib/deps.sh pc
	@sh demo/pc.sh

check: deps all asan unit $(BUILD)/faultinject.so
	@bash tests/run.sh

clean:
	rm -rf $(BUILD)

# The fault-injection shim the daemon is run under in tests/faults/
# (LD_PRELOAD; see the file's header).  Not linked into anything.
$(BUILD)/faultinject.so: tests/lib/faultinject.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -fPIC -shared -pthread -o $@ $< -ldl

# make install [PREFIX=/usr/local] [DESTDIR=]: programs and man pages under
# PREFIX; the systemd unit in UNITDIR, by default PREFIX/lib/systemd/system,
# which systemd searches for both /usr/local (units installed by the
# admin) and /usr (a package); its ExecStart names PREFIX/sbin/pristined.
# The configuration lives in /etc whatever PREFIX is (the unit reads
# /etc/pristine.conf); only the example is installed, so an existing
# /etc/pristine.conf is never touched.  With an empty DESTDIR, the system user
# `pristine` that the unit drops root to is created if missing.
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -D -m 0755 $(BUILD)/pristined $(DESTDIR)$(PREFIX)/sbin/pristined
	install -D -m 0755 $(BUILD)/pristinectl $(DESTDIR)$(PREFIX)/bin/pristinectl
	install -D -m 0644 man/pristined.8 $(DESTDIR)$(PREFIX)/share/man/man8/pristined.8
	install -D -m 0644 man/pristinectl.8 $(DESTDIR)$(PREFIX)/share/man/man8/pristinectl.8
	install -D -m 0644 man/pristine.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/pristine.conf.5
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/pristined|$(PREFIX)/sbin/pristined|' systemd/pristined.service \
		> $(DESTDIR)$(UNITDIR)/pristined.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pristined.service
	install -D -m 0644 docs/examples/pristine.conf $(DESTDIR)/etc/pristine.conf.example
# The unprivileged user the unit runs pristined as (PRISTINED_USER):
# created on this host only, never for a DESTDIR (a package's scripts do that).
	@if [ -z "$(DESTDIR)" ] && ! id -u pristine >/dev/null 2>&1; then \
		echo "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin pristine"; \
		useradd --system --user-group --no-create-home --shell /usr/sbin/nologin pristine; \
	fi

# libFuzzer harnesses (clang), with ASan and UBSan.  `make fuzz` runs each
# for FUZZ_SECONDS on a copy of its seed corpus (fuzz/corpus/NAME).
FUZZ_CC   ?= clang
FUZZ_SAN   = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DPRISTINE_DEBUG
FUZZ_SECONDS ?= 60
FUZZERS   = $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FLIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: fuzz/%.c $(FLIB_OBJ) $(wildcard fuzz/*.h)
	$(FUZZ_CC) $(CPPFLAGS) -std=gnu11 $(WARN) -pthread $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz-build: $(FUZZERS:%=$(BUILD)/fuzz/%)

fuzz: fuzz-build
	@for f in $(FUZZERS); do \
		name=$${f#fuzz_}; mkdir -p $(BUILD)/fuzz/corpus/$$name; \
		cp -n fuzz/corpus/$$name/* $(BUILD)/fuzz/corpus/$$name/ 2>/dev/null; \
		echo "== $$f for $(FUZZ_SECONDS)s"; \
		$(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus/$$name 2>&1 | grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY|Done' || exit 1; \
	done

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# benchmarks ------------------------------------------------------------------
# `make bench` installs what it needs (`make deps`, then bench/deps.sh:
# tgt, tgt-rbd, iperf3, gnuplot-nox - never part of `make check`), builds the release
# daemon and the benchmark programs, then runs bench/run.sh, which prints
# numbers for pristined, tgt and raw_target side by side (see
# BENCHMARKS.md), then bench/rbd.sh (pristined on Ceph RBD vs tgt-rbd vs
# pristined on a local file; bench-rbd below), then bench/cluster.sh (issue 15:
# gateways of a cluster; bench-cluster below).  Nothing here is installed; raw_target (a writable raw
# LUN, bench-only) exists only in $(BUILD)/bench/.
BENCH_BIN = $(BUILD)/bench/iscsi_bench $(BUILD)/bench/raw_target $(BUILD)/bench/overlay_bench $(BUILD)/bench/chain_bench
BENCH_BIN += $(BUILD)/bench/cache_bench $(BUILD)/bench/ovl_ceph_check $(BUILD)/bench/flushwriter
BENCH_BIN += $(BUILD)/bench/tap_bench

.PHONY: bench bench-build bench-versions bench-ab bench-rbd bench-cluster bench-storm bench-cold
bench-build: deps all $(BENCH_BIN)

bench: bench-build
	@sh bench/deps.sh
	@bash bench/run.sh
	@bash bench/rbd.sh
	@bash bench/cluster.sh

# Only the Ceph part of `make bench`: pristined on RBD vs tgt-rbd vs
# pristined on a local file on a throwaway single-node cluster
# (bench/rbd.sh, ~2 minutes; skipped with a reason without Ceph or tgt-rbd).
bench-rbd: bench-build
	@sh bench/deps.sh
	@bash bench/rbd.sh

# Only the cluster part of `make bench` (issue 15): a 64-PC boot storm with
# 1, 2 and 3 gateways, and the stall of a gateway's PCs across kill -9, in
# the lab network of tests/lib/netlab.sh (bench/cluster.sh, ~8 minutes;
# needs root, skipped with a reason without Ceph or keepalived).
bench-cluster: bench-build
	@bash bench/cluster.sh

# Only the game-disk storm of `make bench` (issue 17: 64 PCs reading a boot
# set on LUN 0 and 256 MiB of a game disk on LUN 1, against one disk and
# against tgt; bench/gamedisk.sh, ~2 minutes; BENCH_GAME_MIB=32 is quicker).
bench-storm: bench-build
	@sh bench/deps.sh
	@bash bench/gamedisk.sh

# Only the cold boot storms of `make bench` (issue 18: warm, cold without
# and with the boot-set prefetch, tgt, a blkio model of a slow disk, a
# live PC during a prefetch; bench/coldboot.sh, ~9 minutes, then the
# Linux client, bench/coldboot_linux.sh, ~8 minutes; root).
bench-cold: bench-build
	@sh bench/deps.sh
	@bash bench/coldboot.sh

# Only the version-chain phase of `make bench` (reads through pristined over
# iSCSI at 1 and 10 layers; bench/versions.sh, ~4 minutes).
bench-versions: bench-build
	@bash bench/versions.sh

# An A/B of the hot paths, this tree's daemon against another commit's
# (REV=..., default the last commit before this tree's changes) or another
# binary (BENCH_AB_OLD=...): bench/ab.sh.
REV ?= HEAD
bench-ab: bench-build
	@BENCH_AB_REV=$${BENCH_AB_REV:-$(REV)} bash bench/ab.sh

$(BUILD)/bench/iscsi_bench: bench/iscsi_bench.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< -liscsi

$(BUILD)/bench/raw_target: $(BUILD)/obj/bench/raw_target.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# overlay_bench's own header gives its build line; all of src/util is linked
# so that helpers moving between util files do not break it.
$(BUILD)/bench/overlay_bench: bench/overlay_bench.c $(wildcard src/storage/overlay*.c) src/storage/raw.c $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ -lisal

# chain_bench: version chains (frozen layers) read in-process, no iSCSI;
# `make bench` builds it, BENCH_CHAIN=1 also runs it (bench/run.sh).
$(BUILD)/bench/chain_bench: bench/chain_bench.c $(wildcard src/storage/overlay*.c) src/storage/layer.c src/storage/chain.c src/storage/raw.c $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ -lisal

# ovl_ceph_check without sanitizers: tests/ceph/test_ovl_ceph.sh takes its
# bench numbers from it when it is built.
$(BUILD)/bench/ovl_ceph_check: tests/ceph/ovl_ceph_check.c tests/ceph/check_util.c $(LIB_OBJ) tests/ceph/check_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# flushwriter without sanitizers, for bench/cluster.sh's failover timing.
$(BUILD)/bench/flushwriter: tests/cluster/flushwriter.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -pthread -o $@ $^ -liscsi

# cache_bench: clients reading one RBD version with and without the shared
# read cache, in-process (bench/cache.sh runs it on a throwaway cluster).
$(BUILD)/bench/cache_bench: bench/cache_bench.c src/storage/cache.c src/storage/rbd.c $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ -lisal -lrbd -lrados

# tap_bench: what the LU tap (issue 18) costs on 64 KiB reads of a warm raw
# file, 1 and 2 threads, without it, with it, with it recording a boot.
$(BUILD)/bench/tap_bench: bench/tap_bench.c src/storage/tap.c src/storage/prefetch.c src/storage/bootrec.c \
		src/storage/raw.c $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ -lisal
