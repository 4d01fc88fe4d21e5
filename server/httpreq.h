/* httpreq: the request head of an HTTP/1.x request, checked strictly enough to answer a
 * metrics scrape and to refuse garbage early (RFC 9112 section 2-5: request-line, header
 * fields, the empty line). No allocation; the caller's buffer is only read.
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   field-line   = field-name ":" OWS field-value OWS CRLF
 *
 * A bare LF is accepted as a line end (RFC 9112 2.2 allows it). A body is never read. */
#ifndef TEARDOWN_SERVER_HTTPREQ_H
#define TEARDOWN_SERVER_HTTPREQ_H

#include <stddef.h>

enum httpreq_status {
	HTTPREQ_BAD = -1,	/* not HTTP: answer 400 and close */
	HTTPREQ_INCOMPLETE = 0, /* valid so far: read more */
	HTTPREQ_DONE = 1,	/* a whole head, ending at head_len */
};

struct httpreq {
	const char *method; /* not NUL-terminated: method_len bytes */
	size_t method_len;
	const char *path; /* the request-target up to '?' */
	size_t path_len;
	int major, minor; /* HTTP-version */
	size_t head_len;  /* bytes up to and including the empty line */
};

/* Parses buf[0..len). Everything received so far is checked, so garbage is found before
 * the head is complete. */
enum httpreq_status httpreq_parse(const char *buf, size_t len, struct httpreq *r);

/* 1 when the method or path equals the NUL-terminated s. */
int httpreq_method_is(const struct httpreq *r, const char *s);
int httpreq_path_is(const struct httpreq *r, const char *s);

#endif
