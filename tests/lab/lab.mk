# tests/lab: one program per claim of shared/reference/tcp-teardown-notes.zh.txt.
#   make lab         build build/lab/*, run them all, print the truth table (tests/lab/run.sh)
#   make lab-quick   the same, reading the TIME_WAIT timer instead of waiting it out
# Included by the top Makefile; everything it builds goes to build/lab/.

LAB_SRC   := $(sort $(wildcard tests/lab/[0-9]*.c))
LAB_BINS  := $(patsubst tests/lab/%.c,build/lab/%,$(LAB_SRC))
LAB_FLAGS  = -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -MMD -MP -pthread

.PHONY: lab lab-quick lab-bins

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
