# tests/bench: `make bench` (never part of `make test`).
#   make bench            build, then run tests/bench/bench.py: echo efficiency against
#                         build/bench/epoll-echo, churn, scale, close latency, census speed;
#                         a table on stdout, build/bench/results.json
#   BENCH_SECONDS=2 make bench   a short smoke run (seconds per echo shape)
# Included by the top Makefile; everything it builds goes to build/bench/.

BENCH_FLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g

.PHONY: bench-bins

build/bench/epoll-echo: tests/bench/epoll-echo.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) -o $@ $<

# loadgen: a minimal echo load generator that saturates the server (see its header).
build/bench/loadgen: tests/bench/loadgen.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_FLAGS) -o $@ $<

bench-bins: bin/echo-server bin/load-client build/bench/epoll-echo build/bench/loadgen

bench: bench-bins
	@python3 tests/bench/bench.py
