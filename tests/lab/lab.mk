# tests/lab: one program per claim of shared/reference/tcp-teardown-notes.zh.txt.
#   make lab         build build/lab/*, run them all, print the truth table (tests/lab/run.sh)
#   make lab-quick   the same, reading the TIME_WAIT timer instead of waiting it out
#   make lab-fast    the programs that take well under a second each (for make test)
# Included by the top Makefile; everything it builds goes to build/lab/.

LAB_SRC   := $(sort $(wildcard tests/lab/[0-9]*.c))
LAB_BINS  := $(patsubst tests/lab/%.c,build/lab/%,$(LAB_SRC))
LAB_FLAGS  = -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -MMD -MP -pthread

LAB_FAST  := 00_four_way 01_close_flush 02_half_close 04_kill 05b_simultaneous_close \
	     07_linger_off 08_linger_zero 10_send_after_fin 11_send_after_rst 13c_socket_gone \
	     14_epoll 15_listener_close

.PHONY: lab lab-quick lab-fast lab-bins

build/lab/obj/%.o: tests/lab/%.c
	@mkdir -p $(@D)
	$(CC) $(LAB_FLAGS) -c $< -o $@

$(LAB_BINS): build/lab/%: build/lab/obj/%.o build/lab/obj/lab.o
	$(CC) -pthread -o $@ $^ -lm

lab-bins: $(LAB_BINS)

lab: lab-bins
	@tests/lab/run.sh

lab-quick: lab-bins
	@tests/lab/run.sh --quick

lab-fast: $(addprefix build/lab/,$(LAB_FAST))
	@tests/lab/run.sh --quick $(LAB_FAST)
