# tests/bench: `make bench` (never part of `make test`).
#   make bench            build, then run tests/bench/bench.py: echo efficiency against
#                         build/bench/epoll-echo, churn, scale, close latency, census speed;
#                         a table on stdout, build/bench/results.json
#   BENCH_SECONDS=2 make bench   a short smoke run (seconds per echo shape)
# Included by the top Makefile; everything it builds goes to build/bench/.

BENCH_FLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g

.PHONY: bench-bins

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

# loadgen: a minimal echo load generator that saturates the server (see its header).
build/bench/loadgen: tests/bench/loadgen.c tests/bench/benchnet.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) -o $@ $<

bench-bins: bin/echo-server bin/load-client build/bench/epoll-echo build/bench/bev-echo build/bench/ev-echo \
	    build/bench/loadgen

bench: bench-bins
	@python3 tests/bench/bench.py
