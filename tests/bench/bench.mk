# tests/bench: `make bench` (never part of `make test`).
#   make bench            install the peers' toolchains when missing (bench-deps), build,
#                         then run tests/bench/bench.py: echo efficiency of echo-server and
#                         its peers against build/bench/epoll-echo, churn, memory per idle
#                         connection, scale, close latency, census speed; a table on
#                         stdout, build/bench/results.json
#   BENCH_ROUNDS=2 BENCH_ROUND_SECONDS=1 BENCH_ONLY=echo make bench   a short smoke run
#   make bench-deps       only the install step (Debian packages, as root)
# Included by the top Makefile; everything it builds goes to build/bench/.

BENCH_FLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g
# The peers whose toolchain is missing are not built; bench.py says why it skips them.
UV_FLAGS := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null)
GO := $(shell command -v go 2>/dev/null)
# Go builds offline from the standard library alone: GOPATH mode (no module to download),
# its cache under build/, and never another toolchain.
GO_ENV = GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local GOCACHE=$(CURDIR)/build/bench/gocache \
	 GOPATH=$(CURDIR)/build/bench/gopath
PEER_BINS := $(if $(UV_LIBS),build/bench/uv-echo) $(if $(GO),build/bench/go-echo)

.PHONY: bench-bins bench-deps

build/bench/epoll-echo: tests/bench/epoll-echo.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) -o $@ $<

# bev-echo: the textbook bufferevent echo server, measured to show what that layer costs.
build/bench/bev-echo: tests/bench/bev-echo.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -o $@ $< $(LDLIBS)

# ev-echo: epoll-echo's loop on libevent: what libevent's dispatch alone costs.
build/bench/ev-echo: tests/bench/ev-echo.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -o $@ $< $(LDLIBS)

# uv-echo and go-echo: peers (issue 19), what a user might write instead of echo-server.
build/bench/uv-echo: tests/bench/uv-echo.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) $(UV_FLAGS) -o $@ $< $(UV_LIBS)

build/bench/go-echo: tests/bench/go-echo.go
	@mkdir -p $(@D)
	$(GO_ENV) go build -o $@ $<

# loadgen: a minimal echo load generator that saturates the server (see its header).
build/bench/loadgen: tests/bench/loadgen.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) -o $@ $<

bench-bins: bin/echo-server bin/load-client build/bench/epoll-echo build/bench/bev-echo build/bench/ev-echo \
	    build/bench/loadgen $(PEER_BINS)

bench-deps:
	@tests/bench/install-peers.sh

# A sub-make, so the peers' rules see what bench-deps installed. The build flags go to
# results.json.
bench: bench-deps
	@$(MAKE) --no-print-directory bench-bins
	@BENCH_CFLAGS="$(BENCH_FLAGS)" BENCH_SERVER_CFLAGS="$(ALL_CFLAGS)" python3 tests/bench/bench.py
