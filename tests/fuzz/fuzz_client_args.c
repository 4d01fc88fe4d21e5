/* libFuzzer harness: the load client's argument parser. The input is split at NUL bytes
 * into argv; any input must be accepted or rejected (usage error), never crash. */
#include "client/options.h"
#include "log.h"
#include "tests/no_dns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct client_opts o;
	char *copy = malloc(size + 1);
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	size_t start = 0;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "load-client";
	for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
		if (i == size || copy[i] == '\0') {
			argv[argc++] = copy + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	log_set_level(LOG_LVL_ERROR);
	options_parse(&o, argc, argv);
	free(copy);
	return 0;
}
