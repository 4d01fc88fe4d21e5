# teardown: plain Makefile. Objects under build/, binaries under bin/.
#   make            build bin/echo-server and bin/load-client
#   make test       install missing packages, build, unit tests (plain and ASan+UBSan),
#                   integration tests; last line "N passed, N failed, N skipped"
#   make demo       leaky vs correct, side by side
#   make lab        the reference note's claims against this kernel
#   make test-long  the slow integration tests (tests/long/)
#   make bench      benchmarks (results in build/bench/)
#   make soak       SOAK_SECONDS (600) of mixed load, heap/fd/accounting series (build/soak/)
#   make bench-scale  100k to 1M concurrent idle connections, both ends here (root)
#   make clean

CC      ?= cc
PKGS    := libevent_core
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g -gdwarf-4  # DWARF 4: valgrind 3.19 cannot read gcc 12's DWARF 5
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Icommon -MMD -MP \
	     $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_core) -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CMOCKA  = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

COMMON_SRC := $(wildcard common/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CLIENT_SRC := $(filter-out client/main.c,$(wildcard client/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRC))

# Two flavours of every object: plain (build/obj) and sanitized (build/asan/obj).
obj  = $(patsubst %.c,build/obj/%.o,$(1))
aobj = $(patsubst %.c,build/asan/obj/%.o,$(1))

.PHONY: all test test-long unit integration deps demo lab bench clean asan check-config check-valgrind fuzz demo-restart
# The load client is built once client/main.c exists.
BINS := bin/echo-server $(if $(wildcard client/main.c),bin/load-client)
ABINS := $(patsubst bin/%,build/asan/bin/%,$(BINS))
all: $(BINS)

# Unit tests include "server/x.h" or "client/x.h" (both may have a config.h).
build/obj/tests/unit/%.o build/asan/obj/tests/unit/%.o: ALL_CFLAGS += -I.

build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

build/libcommon.a: $(call obj,$(COMMON_SRC))
build/libserver.a: $(call obj,$(SERVER_SRC))
build/libclient.a: $(call obj,$(CLIENT_SRC))
build/asan/libcommon.a: $(call aobj,$(COMMON_SRC))
build/asan/libserver.a: $(call aobj,$(SERVER_SRC))
build/asan/libclient.a: $(call aobj,$(CLIENT_SRC))
build/%.a:
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

bin/echo-server: build/obj/server/main.o build/libserver.a build/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bin/load-client: build/obj/client/main.o build/libclient.a build/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/asan/bin/echo-server: build/asan/obj/server/main.o build/asan/libserver.a build/asan/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

build/asan/bin/load-client: build/asan/obj/client/main.o build/asan/libclient.a build/asan/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

asan: $(ABINS)

# Unit tests link the module archives; a test pulls in only the objects it uses.
build/unit/%: build/obj/tests/unit/%.o build/libserver.a build/libclient.a build/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(UNIT_LDFLAGS) $(LDLIBS) $(CMOCKA)

build/asan/unit/%: build/asan/obj/tests/unit/%.o build/asan/libserver.a build/asan/libclient.a build/asan/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(SAN) -o $@ $^ $(UNIT_LDFLAGS) $(LDLIBS) $(CMOCKA)

# Fault injection: accept4() is wrapped so ENFILE/EMFILE can be injected.
build/unit/test_server_accept build/asan/unit/test_server_accept: UNIT_LDFLAGS = -Wl,--wrap=accept4 \
	-Wl,--wrap=event_add
# No DNS query leaves the machine: names resolve numerically only (tests/no_dns.h).
build/unit/test_sock build/asan/unit/test_sock: UNIT_LDFLAGS = -Wl,--wrap=getaddrinfo
# Fault injection: the client's worker spawning with failing pipe2, fork and waitpid.
build/unit/test_client_procs build/asan/unit/test_client_procs: UNIT_LDFLAGS = -Wl,--wrap=pipe2 -Wl,--wrap=fork -Wl,--wrap=waitpid

# The unit tests' objects are intermediate files of a pattern chain: without this, make
# deletes them after linking and rebuilds them on every run.
.SECONDARY:
# Writes to stderr can be cut short, fail with EAGAIN or stall (the log writer's tests).
build/unit/test_log build/asan/unit/test_log: UNIT_LDFLAGS = -Wl,--wrap=write

UNIT_BINS      := $(addprefix build/unit/,$(UNIT_NAMES))
UNIT_ASAN_BINS := $(addprefix build/asan/unit/,$(UNIT_NAMES))

# LD_PRELOAD shims with which integration tests inject faults into the real binaries.
SHIMS := $(patsubst tests/shim/%.c,build/shim/%.so,$(wildcard tests/shim/*.c))
build/shim/%.so: tests/shim/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -ldl

deps:
	@tests/install-deps.sh

# `make test` first installs what is missing, then builds in a sub-make (pkg-config must
# run after libevent-dev is there) on every core, then runs every suite through one runner.
NPROC := $(shell nproc 2>/dev/null || echo 1)
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all asan $(SHIMS) $(UNIT_BINS) $(UNIT_ASAN_BINS)
	@python3 tests/run.py --check "tests/arch/include_graph.py tests/arch/format_check.py" \
		--unit "$(UNIT_BINS)" --unit-asan "$(UNIT_ASAN_BINS)" \
		--integration tests/integration --asan-pattern 'test_server*.py,test_client*.py,test_capacity_abuse.py' 

# make test-long: the slow integration tests (tests/long/), which import the harness of
# tests/integration; not part of `make test`.
test-long: deps
	@$(MAKE) --no-print-directory all asan $(SHIMS)
	@PYTHONPATH=tests/integration python3 tests/run.py --integration tests/long

unit: $(UNIT_BINS) $(UNIT_ASAN_BINS)
	@python3 tests/run.py --unit "$(UNIT_BINS)" --unit-asan "$(UNIT_ASAN_BINS)"

integration: all asan $(SHIMS)
	@python3 tests/run.py --integration tests/integration

check-valgrind: bin/echo-server
	@python3 tests/valgrind.py

# make format: lays every C file out as .clang-format says, with clang-format 14 (Debian
# 12's); make format-check only checks (make test runs it; another version: skipped).
.PHONY: format format-check
format:
	@python3 tests/arch/format_check.py --fix
format-check:
	@python3 tests/arch/format_check.py

check-config: bin/echo-server
	bin/echo-server -c conf/server.conf --check-config

demo: deps
	@$(MAKE) --no-print-directory all
	@python3 tests/demo.py

# make fuzz: libFuzzer harnesses (clang) for the config parser, the client's argument
# parser and the metrics endpoint's request-head parser, FUZZ_SECONDS each. New inputs go to build/fuzz/, the seeds stay in tests/fuzz/.
FUZZ_SECONDS ?= 60
# --wrap=getaddrinfo (tests/no_dns.h): fuzzed host names never reach a DNS server.
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -I. \
	-Wl,--wrap=getaddrinfo
build/fuzz/fuzz_conf: tests/fuzz/fuzz_conf.c $(COMMON_SRC) server/config.c
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)
build/fuzz/fuzz_client_args: tests/fuzz/fuzz_client_args.c $(COMMON_SRC) $(CLIENT_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)
build/fuzz/fuzz_httpreq: tests/fuzz/fuzz_httpreq.c server/httpreq.c
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)
fuzz: deps build/fuzz/fuzz_conf build/fuzz/fuzz_client_args build/fuzz/fuzz_httpreq
	@for f in conf client_args httpreq; do \
		mkdir -p build/fuzz/corpus_$$f && cp tests/fuzz/corpus_$$f/* build/fuzz/corpus_$$f/ && \
		echo "fuzz_$$f: $(FUZZ_SECONDS) s" && \
		build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
			-print_final_stats=1 build/fuzz/corpus_$$f 2>build/fuzz/fuzz_$$f.log || \
			{ tail -50 build/fuzz/fuzz_$$f.log; exit 1; }; \
		grep -E "stat::number_of_executed_units|stat::peak_rss" build/fuzz/fuzz_$$f.log; \
	done

clean:
	rm -rf build bin

# make install / make uninstall. Command-line variables, as operators and packagers expect:
#   PREFIX=/usr/local  BINDIR=$(PREFIX)/bin  SYSCONFDIR=$(PREFIX)/etc (packagers: /etc)
#   MANDIR=$(PREFIX)/share/man  UNITDIR=$(PREFIX)/lib/systemd/system  DESTDIR (staging)
# Installs both binaries, $(SYSCONFDIR)/teardown/server.conf, echo-server(1) and
# load-client(1), and the systemd unit echo-server.service. The unit and the man pages
# name the default /usr/local paths; the installed copies name the real ones. An edited
# server.conf is never overwritten (the new one goes beside it as server.conf.new) nor
# removed by uninstall.
PREFIX     = /usr/local
BINDIR     = $(PREFIX)/bin
SYSCONFDIR = $(PREFIX)/etc
MANDIR     = $(PREFIX)/share/man
UNITDIR    = $(PREFIX)/lib/systemd/system
INSTALL    = install
CONFDIR    = $(SYSCONFDIR)/teardown
MANPAGES   = echo-server.1 load-client.1
INSTALL_PATHS = sed -e 's|/usr/local/bin|$(BINDIR)|g' -e 's|/usr/local/etc|$(SYSCONFDIR)|g' \
		    -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g'

.PHONY: install uninstall
install: bin/echo-server bin/load-client
	$(INSTALL) -d -m 755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 755 bin/echo-server bin/load-client $(DESTDIR)$(BINDIR)/
	@set -e; conf=$(DESTDIR)$(CONFDIR)/server.conf; \
	if [ -e $$conf ] && ! cmp -s conf/server.conf $$conf; then \
		echo "$(INSTALL) -m 644 conf/server.conf $$conf.new"; \
		$(INSTALL) -m 644 conf/server.conf $$conf.new; \
		echo "kept the edited $$conf; the new default is beside it in $$conf.new"; \
	else \
		echo "$(INSTALL) -m 644 conf/server.conf $$conf"; \
		$(INSTALL) -m 644 conf/server.conf $$conf; \
	fi
	@set -e; for m in $(MANPAGES); do \
		echo "$(INSTALL) -m 644 conf/$$m $(DESTDIR)$(MANDIR)/man1/$$m"; \
		$(INSTALL_PATHS) conf/$$m > build/$$m.install; \
		$(INSTALL) -m 644 build/$$m.install $(DESTDIR)$(MANDIR)/man1/$$m; \
		rm -f build/$$m.install; \
	done
	$(INSTALL_PATHS) conf/echo-server.service > build/echo-server.service.install
	$(INSTALL) -m 644 build/echo-server.service.install $(DESTDIR)$(UNITDIR)/echo-server.service
	@rm -f build/echo-server.service.install

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/echo-server $(DESTDIR)$(BINDIR)/load-client
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(MANPAGES))
	rm -f $(DESTDIR)$(UNITDIR)/echo-server.service
	@conf=$(DESTDIR)$(CONFDIR)/server.conf; rm -f $$conf.new; \
	if [ -e $$conf ] && ! cmp -s conf/server.conf $$conf; then \
		echo "kept $$conf: it differs from conf/server.conf (edited?); remove it by hand"; \
	else \
		echo "rm -f $$conf"; rm -f $$conf; \
		rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true; \
	fi

-include tests/lab/lab.mk
-include tests/bench/bench.mk
-include tests/soak/soak.mk
-include $(shell find build -name '*.d' 2>/dev/null)

# make demo-restart: a naive restart (SIGTERM, then start again) and the seamless path
# (reloads, workers 2-3-2, upgrades) under the same load-client churn, their refused and
# reset connections side by side (tests/long/test_lifecycle_churn.py; root, a namespace).
demo-restart: deps
	@$(MAKE) --no-print-directory all
	@LIFECYCLE_SECONDS=$${LIFECYCLE_SECONDS:-20} PYTHONPATH=tests/integration \
		python3 tests/run.py --integration tests/long --pattern test_lifecycle_churn.py
