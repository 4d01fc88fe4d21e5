/* conf: a table-driven `key = value` parser shared by the server's config file, its
 * `--set key=value` overrides and `--check-config`.
 *
 * A program describes its keys once (struct conf_key: name, type, defaults, range, unit,
 * help, and where the value lives in its config struct); everything else - parsing,
 * range checks, defaults by mode, printing the effective config - is driven by that table.
 *
 * File syntax: one `key = value` per line; '#' starts a comment (anywhere outside a
 * value's text); blank lines are ignored; spaces around key and value are trimmed.
 * Precisely: a '#' at the start of a line or after a space or tab starts a comment, so
 * `name = a#b` keeps "a#b" while `port = 80 # why` is 80. Lines end in LF or CRLF; a line
 * may hold at most CONF_LINE_MAX - 1 bytes; NUL, other control bytes (except tab) and
 * invalid UTF-8 are errors (binary files are refused, UTF-8 comments are fine).
 * Values:
 *   bool      yes | no
 *   int       decimal integer, no sign unless min < 0, no junk
 *   duration  NUMBER UNIT with UNIT ms, s, m, h (e.g. 250ms, 15s, 2m); a bare 0 means off;
 *             stored in milliseconds. With CONF_F_WHOLE_SECONDS (values the kernel takes
 *             in whole seconds) a value that is not a whole number of seconds is rejected.
 *   size      bytes, or NUMBER k / m (1024, 1024^2); stored in bytes
 *   string    any text up to CONF_STR_MAX - 1 bytes; with CONF_F_ADDRESS, HOST:PORT
 *   enum      one of the key's choices; stored as the index
 *   percent   NUMBER% (whole percent, e.g. 10%); a bare number is an error, since 10
 *             could be a fraction as well; stored as the number
 * Values other than strings contain no spaces ("10 s" is an error, not 10 s); an empty
 * value is an error.
 * Errors: "FILE:LINE: KEY: reason" for a file, "--set:N: KEY: reason" for the N-th --set;
 * quoted content is escaped (conf_escape). A file must be a regular file of at most
 * CONF_FILE_MAX bytes.
 */
#ifndef TEARDOWN_CONF_H
#define TEARDOWN_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_STR_MAX   256
#define CONF_LINE_MAX  4096 /* longer lines are an error, not truncated */
#define CONF_ERR_MAX   512
#define CONF_WHERE_MAX CONF_ERR_MAX /* "FILE:LINE" (as in an error), or "--set:N" */
#define CONF_MODES     2	    /* defaults may differ per mode: index 0 and 1 */
/* A config file larger than this is refused unread (a device or a log named by mistake
 * must not fill the memory); it is also what bounds a reload's read. */
#define CONF_FILE_MAX (1 << 20)

enum conf_type {
	CONF_BOOL,
	CONF_INT,
	CONF_DURATION,
	CONF_SIZE,
	CONF_STRING,
	CONF_ENUM,
	CONF_PERCENT,
};

#define CONF_F_WHOLE_SECONDS 0x1
/* 0 means "off" and is accepted even below min (e.g. "0 (off) or between 1s and 2h"). */
#define CONF_F_ZERO_OFF 0x2
/* A string that is a socket address, HOST:PORT or [IPv6]:PORT (port 0-65535, host numeric
 * or resolvable by getaddrinfo), checked where it is set so the error has its place.
 * ":PORT" is stored as "127.0.0.1:PORT": every address must be asked for explicitly
 * (0.0.0.0:PORT or [::]:PORT). */
#define CONF_F_ADDRESS 0x4
/* When a changed value takes effect on a reload (the server's keys carry exactly one;
 * the lifecycle issue's reload reads them, the docs list them): */
#define CONF_F_RELOAD_NOW	0x8  /* at once, existing connections included */
#define CONF_F_RELOAD_NEW_CONNS 0x10 /* for connections accepted afterwards (listener options) */
#define CONF_F_RELOAD_RESTART	0x20 /* only with new listeners or workers */
#define CONF_F_RELOAD_MASK	(CONF_F_RELOAD_NOW | CONF_F_RELOAD_NEW_CONNS | CONF_F_RELOAD_RESTART)

/* Written with designated initializers (.name = ..., .flags = ...): an absent field is 0 or
 * NULL, which every field reads as "none" (no default, no range, no unit, no flags). */
struct conf_key {
	const char *name;
	enum conf_type type;
	/* Default per mode, as text in the key's own syntax; def[1] NULL = same as def[0]. */
	const char *def[CONF_MODES];
	int64_t min, max; /* int: value; duration: ms; size: bytes (0,0 = no range check) */
	const char *unit; /* for docs and --check-config: "s", "bytes", ... */
	const char *help; /* one line */
	const char *const *choices; /* CONF_ENUM: NULL-terminated */
	size_t offset;		    /* where the value lives in the config struct */
	unsigned flags;
};
/* Storage by type: bool, enum -> int; int, duration, size, percent -> int64_t;
 * string -> char[CONF_STR_MAX]. */

struct conf {
	const struct conf_key *keys;
	size_t nkeys;
	void *obj;		/* the config struct the offsets point into */
	unsigned char *is_set;	/* nkeys flags: set by the file or the command line */
	unsigned char *in_file; /* nkeys flags: seen in the current file (duplicate check) */
	int *first_line;	/* nkeys: line of the current file that set it (for errors) */
	/* nkeys: where the stored value was set ("FILE:LINE", "--set:N", "--mode"), "" for
	 * a default, and the order of the settings (a later one has a larger number), for
	 * errors about several keys together (conf_where). */
	char (*where)[CONF_WHERE_MAX];
	unsigned *seq;
	unsigned next_seq;
};

/* Binds a table to a config struct; allocates the flags. 0 or -1 (ENOMEM). */
int conf_init(struct conf *c, const struct conf_key *keys, size_t nkeys, void *obj);
void conf_free(struct conf *c);

/* Parses a file; on error writes "FILE:LINE: KEY: reason" (or "FILE: reason" when the
 * file cannot be read) to err and returns -1. A key repeated in one file is an error. */
int conf_parse_file(struct conf *c, const char *path, char *err, size_t errlen);
/* Same, from memory; `name` stands for the file name in errors. NUL bytes are errors. */
int conf_parse_buf(struct conf *c, const char *name, const char *buf, size_t len, char *err,
		   size_t errlen);
/* One `key=value` from the command line; pos is its 1-based position among the --set
 * arguments (errors read "--set:POS: KEY: reason"). Overrides the file whatever the order
 * of the calls: a file parsed later still checks such a key's value but does not store it.
 * A key given twice on the command line: the last one wins. No comments here. */
int conf_set_arg(struct conf *c, const char *kv, int pos, char *err, size_t errlen);
/* Same, with errors prefixed by `origin` instead of "--set:POS" (a shorthand flag such as
 * "--mode" names itself). */
int conf_set_arg_as(struct conf *c, const char *kv, const char *origin, char *err, size_t errlen);
/* Fills every key not set by a file or --set with its default for `mode` (0 or 1): def[mode],
 * or def[0] when def[1] is NULL. A NULL def[0] means no default: the value is left as it is
 * (zero in a zeroed struct). A default that does not parse is an error ("KEY: bad default").
 * Errors: -1 with the reason in err. */
int conf_apply_defaults(struct conf *c, int mode, char *err, size_t errlen);

/* Copies in to out (outlen bytes with the NUL) with what a terminal would hide or act on
 * escaped: control bytes, invalid UTF-8 and invisible code points (C1 controls, the byte
 * order mark, bidirectional and zero-width format characters) as \xNN per byte, a
 * backslash as \\. Cut before a unit that does not fit. Returns the length written.
 * Every error message of this module passes through it (they quote file content). */
size_t conf_escape(const char *in, char *out, size_t outlen);

/* Parses one value for one key into the struct. 0, or -1 with the reason (no prefix). */
int conf_parse_value(const struct conf_key *k, void *obj, const char *val, char *reason,
		     size_t len);
const struct conf_key *conf_find(const struct conf *c, const char *name);
int conf_was_set(const struct conf *c, const char *name);
/* Where the value of key `name` was set ("FILE:LINE", "--set:N", "--mode"), NULL when it
 * is its default (or no such key); *seq (when not NULL) orders the settings: the one made
 * last has the largest. For a rule on several keys, whose error names the place of the
 * key set last. */
const char *conf_where(const struct conf *c, const char *name, unsigned *seq);
/* Formats a key's current value in its own syntax ("15s", "yes", "64k"). */
void conf_format_value(const struct conf_key *k, const void *obj, char *buf, size_t len);

#endif
