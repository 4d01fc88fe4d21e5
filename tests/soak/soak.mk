# tests/soak: `make soak` (never part of `make test`; root: a network namespace of its own).
#   make soak                    SOAK_SECONDS (default 600) of mixed load against
#                                bin/echo-server (workers=2, /metrics, short timeouts);
#                                build/soak/series.csv, series.png, summary.txt
#   SOAK_SECONDS=120 make soak   a short run
#   SOAK_ASAN=1 make soak        the same on build/asan/bin/* (LeakSanitizer at each exit);
#                                results in build/soak-asan/
# Included by the top Makefile.
SOAK_SECONDS ?= 600
SOAK_ASAN ?= 0

.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all $(if $(filter-out 0,$(SOAK_ASAN)),asan)
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_ASAN=$(SOAK_ASAN) python3 tests/soak/soak.py
