/* libFuzzer harness: the metrics endpoint's request-head parser. Any input of at most
 * METRICS_REQ_MAX bytes (what the endpoint buffers) must give BAD, INCOMPLETE or DONE,
 * never a crash, a hang or a read outside the input; and the answers must agree with each
 * other: a DONE head lies inside the input with its method and path, parses alone to the
 * same head, and no shorter prefix of a head that is not BAD is BAD. */
#include "server/httpreq.h"
#include "server/metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int within(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes, so ASan catches a read past the input. */
	char *buf = malloc(size ? size : 1);
	struct httpreq r, again;
	enum httpreq_status st;

	if (buf == NULL || size > METRICS_REQ_MAX) {
		free(buf);
		return 0;
	}
	memcpy(buf, data, size);
	st = httpreq_parse(buf, size, &r);
	if (st != HTTPREQ_BAD && st != HTTPREQ_INCOMPLETE && st != HTTPREQ_DONE)
		abort();
	if (st == HTTPREQ_DONE) {
		if (r.head_len == 0 || r.head_len > size ||
		    !within(r.method, r.method_len, buf, size) ||
		    !within(r.path, r.path_len, buf, size) || r.method_len == 0)
			abort();
		if (httpreq_parse(buf, r.head_len, &again) != HTTPREQ_DONE ||
		    again.head_len != r.head_len)
			abort();
	}
	/* Garbage is refused as soon as it is seen: prefixes of what is not BAD are not BAD. */
	if (st != HTTPREQ_BAD && size > 0 &&
	    (httpreq_parse(buf, size / 2, &again) == HTTPREQ_BAD ||
	     httpreq_parse(buf, size - 1, &again) == HTTPREQ_BAD))
		abort();
	free(buf);
	return 0;
}
