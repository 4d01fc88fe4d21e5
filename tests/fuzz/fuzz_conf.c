/* libFuzzer harness: the config parser with the server's real key table. Any input must
 * give 0 or -1 with a NUL-terminated error, never a crash, a hang or a leak. The input is
 * parsed as a file, and its first line also as a --set argument. */
#include "conf.h"
#include "server/config.h"
#include "tests/no_dns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_config cfg;
	struct conf c;
	char err[CONF_ERR_MAX], line[CONF_LINE_MAX + 16];
	size_t n = 0;

	if (conf_init(&c, config_keys, config_nkeys, &cfg) < 0)
		return 0;
	err[0] = '\0';
	if (conf_parse_buf(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err)) < 0 &&
	    memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0') {
		line[n] = (char)data[n];
		n++;
	}
	line[n] = '\0';
	conf_set_arg(&c, line, 1, err, sizeof(err));
	conf_apply_defaults(&c, size % 2, err, sizeof(err));
	conf_free(&c);
	return 0;
}
