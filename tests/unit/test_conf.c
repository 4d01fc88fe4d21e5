/* Unit tests of common/conf.c: every value form, every rejected input and its exact
 * message, defaults per mode, precedence of --set over the file, format round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

struct tconf {
	int64_t port;
	int64_t timeout;
	int64_t idle;
	int64_t buffer;
	int enabled;
	int mode;
	char name[CONF_STR_MAX];
	int64_t offset;
	int64_t count;
	int64_t heartbeat;
	int64_t share;
};

#define OFF(f) offsetof(struct tconf, f)
#define H      (3600LL * 1000)

static const char *const modes[] = {"correct", "leaky", NULL};

static const struct conf_key keys[] = {
    {"port", CONF_INT, {"8080", NULL}, 1, 65535, "", "port", NULL, OFF(port), 0},
    {"timeout", CONF_DURATION, {"30s", "0"}, 0, 2 * H, "", "t", NULL, OFF(timeout), 0},
    {"idle",
     CONF_DURATION,
     {"60s", NULL},
     1000,
     2 * H,
     "",
     "i",
     NULL,
     OFF(idle),
     CONF_F_WHOLE_SECONDS},
    {"buffer", CONF_SIZE, {"64k", NULL}, 1024, 16LL << 20, "bytes", "b", NULL, OFF(buffer), 0},
    {"enabled", CONF_BOOL, {"yes", "no"}, 0, 0, "", "e", NULL, OFF(enabled), 0},
    {"mode", CONF_ENUM, {"correct", NULL}, 0, 0, "", "m", modes, OFF(mode), 0},
    {"name", CONF_STRING, {"teardown", NULL}, 0, 0, "", "n", NULL, OFF(name), 0},
    {"offset", CONF_INT, {"-3", "7"}, -100, 100, "", "o", NULL, OFF(offset), 0},
    {"count", CONF_INT, {NULL, NULL}, 0, 0, "", "no default, no range", NULL, OFF(count), 0},
    {"heartbeat",
     CONF_DURATION,
     {"30s", "0"},
     1000,
     H,
     "",
     "h",
     NULL,
     OFF(heartbeat),
     CONF_F_ZERO_OFF},
    {.name = "share",
     .type = CONF_PERCENT,
     .def = {"10%"},
     .min = 0,
     .max = 50,
     .help = "s",
     .offset = OFF(share)},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct fixture {
	struct conf c;
	struct tconf t;
	char err[CONF_ERR_MAX];
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(conf_init(&f->c, keys, NKEYS, &f->t), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	conf_free(&f->c);
	free(f);
}

static int setup(void **state)
{
	*state = fixture_new();
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static int parse(struct fixture *f, const char *text)
{
	f->err[0] = '\0';
	return conf_parse_buf(&f->c, "t.conf", text, strlen(text), f->err, sizeof(f->err));
}

/* A fresh conf must reject text with exactly this message. */
static void expect_error(const char *text, size_t len, const char *want)
{
	struct fixture *f = fixture_new();

	if (conf_parse_buf(&f->c, "t.conf", text, len, f->err, sizeof(f->err)) != -1)
		fail_msg("accepted: %.80s", text);
	assert_string_equal(f->err, want);
	fixture_free(f);
}

static void good_forms(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "# a comment\n"
				  "\n"
				  "   \t\n"
				  "port = 443\n"
				  "\ttimeout=250ms   # trailing comment\n"
				  "idle = 2m\n"
				  "buffer = 64k\n"
				  "enabled = no\n"
				  "mode = leaky\n"
				  "name = a#b c  # the '#' inside a word is text\n"
				  "offset = -100\n"
				  "count = 9223372036854775807\n"
				  "heartbeat = 0"),
			 0);
	assert_int_equal(f->t.port, 443);
	assert_int_equal(f->t.timeout, 250);
	assert_int_equal(f->t.idle, 120000);
	assert_int_equal(f->t.buffer, 65536);
	assert_int_equal(f->t.enabled, 0);
	assert_int_equal(f->t.mode, 1);
	assert_string_equal(f->t.name, "a#b c");
	assert_int_equal(f->t.offset, -100);
	assert_int_equal(f->t.count, INT64_MAX);
	assert_int_equal(f->t.heartbeat, 0);
	assert_true(conf_was_set(&f->c, "port"));
	assert_true(conf_was_set(&f->c, "heartbeat"));
	assert_false(conf_was_set(&f->c, "nosuchkey"));
}

static void duration_and_size_units(void **state)
{
	static const struct {
		const char *key, *val;
		int64_t want;
	} cases[] = {
	    {"timeout", "0", 0},	 {"timeout", "0s", 0},	    {"timeout", "1ms", 1},
	    {"timeout", "15s", 15000},	 {"timeout", "2m", 120000}, {"timeout", "2h", 2 * H},
	    {"timeout", "007s", 7000},	 {"idle", "3000ms", 3000},  {"buffer", "1024", 1024},
	    {"buffer", "1k", 1024},	 {"buffer", "64K", 65536},  {"buffer", "1m", 1 << 20},
	    {"buffer", "16M", 16 << 20}, {"heartbeat", "1s", 1000}, {"port", "1", 1},
	    {"port", "65535", 65535},	 {"offset", "100", 100},    {"offset", "-0", 0},
	    {"count", "0", 0},
	};
	struct fixture *f = *state;
	char kv[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct conf_key *k = conf_find(&f->c, cases[i].key);
		int64_t got;

		snprintf(kv, sizeof(kv), "%s=%s", cases[i].key, cases[i].val);
		if (conf_set_arg(&f->c, kv, 1, f->err, sizeof(f->err)) != 0)
			fail_msg("%s rejected: %s", kv, f->err);
		memcpy(&got, (char *)&f->t + k->offset, sizeof(got));
		if (got != cases[i].want)
			fail_msg("%s: got %lld", kv, (long long)got);
	}
}

static void crlf_and_no_final_newline(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "port = 81\r\nname = x y\r\n\r\nenabled = yes"), 0);
	assert_int_equal(f->t.port, 81);
	assert_string_equal(f->t.name, "x y");
	assert_int_equal(f->t.enabled, 1);
}

static void utf8_comments_allowed(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "# 关闭 CLOSE_WAIT 连接\nname = café\n"), 0);
	assert_string_equal(f->t.name, "café");
}

static void bad_numbers(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
	    {"port =", "t.conf:1: port: empty value"},
	    {"port =   # comment", "t.conf:1: port: empty value"},
	    {"name =", "t.conf:1: name: empty value"},
	    {"port = 99999999999999999999", "t.conf:1: port: must be between 1 and 65535"},
	    {"port = 65536", "t.conf:1: port: must be between 1 and 65535"},
	    {"port = 0", "t.conf:1: port: must be between 1 and 65535"},
	    {"count = 9223372036854775808", "t.conf:1: count: too large (max 9223372036854775807)"},
	    {"offset = -101", "t.conf:1: offset: must be between -100 and 100"},
	    {"offset = -99999999999999999999", "t.conf:1: offset: must be between -100 and 100"},
	    {"port = -1", "t.conf:1: port: must not be negative"},
	    {"count = -1", "t.conf:1: count: must not be negative"},
	    {"timeout = -5s", "t.conf:1: timeout: must not be negative"},
	    {"buffer = -1k", "t.conf:1: buffer: must not be negative"},
	    {"port = +80", "t.conf:1: port: must not have a '+' sign"},
	    {"port = 80x", "t.conf:1: port: trailing junk \"x\" after the number"},
	    {"port = 0x50", "t.conf:1: port: trailing junk \"x50\" after the number"},
	    {"port = 8.0", "t.conf:1: port: trailing junk \".0\" after the number"},
	    {"port = 80#c", "t.conf:1: port: trailing junk \"#c\" after the number"},
	    {"port = abc", "t.conf:1: port: not a number: \"abc\""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].text, strlen(cases[i].text), cases[i].err);
}

static void bad_units_and_words(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
	    {"port = 80 81", "t.conf:1: port: spaces inside a value are not allowed"},
	    {"timeout = 10 s", "t.conf:1: timeout: spaces inside a value are not allowed"},
	    {"timeout = 10sx", "t.conf:1: timeout: unknown unit \"sx\" (use ms, s, m or h)"},
	    {"timeout = 10S", "t.conf:1: timeout: unknown unit \"S\" (use ms, s, m or h)"},
	    {"timeout = 10", "t.conf:1: timeout: needs a unit (ms, s, m or h), e.g. 10s"},
	    {"timeout = 1.5s",
	     "t.conf:1: timeout: must be a whole number: use a smaller unit (1500ms, not 1.5s)"},
	    {"timeout = s", "t.conf:1: timeout: not a number: \"s\""},
	    {"timeout = 3h", "t.conf:1: timeout: must be between 0 and 2h"},
	    {"timeout = 7200001ms", "t.conf:1: timeout: must be between 0 and 2h"},
	    {"timeout = 9223372036854775807h", "t.conf:1: timeout: must be between 0 and 2h"},
	    {"idle = 1500ms", "t.conf:1: idle: must be whole seconds (1s, 2s)"},
	    /* a whole-second key must not suggest a smaller unit it would then refuse */
	    {"idle = 1.5s", "t.conf:1: idle: must be whole seconds (1s, 2s)"},
	    {"idle = 1.5m", "t.conf:1: idle: must be whole seconds (1s, 2s)"},
	    {"idle = 0", "t.conf:1: idle: must be between 1s and 2h"},
	    {"heartbeat = 500ms", "t.conf:1: heartbeat: must be 0 (off) or between 1s and 1h"},
	    {"heartbeat = 2h", "t.conf:1: heartbeat: must be 0 (off) or between 1s and 1h"},
	    {"buffer = 64g",
	     "t.conf:1: buffer: unknown size suffix \"g\" (use k or m, or plain bytes)"},
	    {"buffer = 64kb",
	     "t.conf:1: buffer: unknown size suffix \"kb\" (use k or m, or plain bytes)"},
	    {"buffer = 1.5k",
	     "t.conf:1: buffer: must be a whole number: use a smaller unit (1536, not 1.5k)"},
	    {"buffer = 17m", "t.conf:1: buffer: must be between 1k and 16m"},
	    {"buffer = 100", "t.conf:1: buffer: must be between 1k and 16m"},
	    {"buffer = 99999999999999999m", "t.conf:1: buffer: must be between 1k and 16m"},
	    {"enabled = true", "t.conf:1: enabled: must be yes or no"},
	    {"enabled = YES", "t.conf:1: enabled: must be yes or no"},
	    {"mode = fast", "t.conf:1: mode: \"fast\" is not one of correct, leaky"},
	    {"name = \"quoted\"", "t.conf:1: name: write the value without quotes"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].text, strlen(cases[i].text), cases[i].err);
}

static void bad_lines(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
	    {"bogus = 1", "t.conf:1: bogus: unknown key"},
	    {"Port = 1", "t.conf:1: Port: unknown key"},
	    {"port 80", "t.conf:1: missing '=' (expected key = value)"},
	    {"port", "t.conf:1: missing '=' (expected key = value)"},
	    {"= 80", "t.conf:1: missing key before '='"},
	    {"# ok\n\nport = 80\nname = a\nport = 81",
	     "t.conf:5: port: duplicate key, first set on line 3"},
	    {"port = 80\n\n\nmode = slow\n",
	     "t.conf:4: mode: \"slow\" is not one of correct, leaky"},
	    {"port = 80\rname = x", "t.conf:1: control byte 0x0d at column 10"},
	    {"name = a\x01z", "t.conf:1: control byte 0x01 at column 9"},
	    {"name = a\x7fz", "t.conf:1: control byte 0x7f at column 9"},
	    {"# \x1b[31m", "t.conf:1: control byte 0x1b at column 3"},
	    {"name = \xff\xfe", "t.conf:1: invalid UTF-8 byte 0xff at column 8 (not a text file?)"},
	    {"name = \xc0\xaf", "t.conf:1: invalid UTF-8 byte 0xc0 at column 8 (not a text file?)"},
	    {"name = \xed\xa0\x80",
	     "t.conf:1: invalid UTF-8 byte 0xed at column 8 (not a text file?)"},
	    {"# truncated \xe5\x85",
	     "t.conf:1: invalid UTF-8 byte 0xe5 at column 13 (not a text file?)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].text, strlen(cases[i].text), cases[i].err);
}

static void nul_bytes(void **state)
{
	static const char text[] = "port = 80\nname = a\0b\n";

	(void)state;
	expect_error(text, sizeof(text) - 1, "t.conf:2: NUL byte at column 9 (not a text file?)");
	expect_error("\0", 1, "t.conf:1: NUL byte at column 1 (not a text file?)");
}

/* A line longer than CONF_LINE_MAX - 1 is an error, never truncated; one byte less is
 * fine. Even a comment. */
static void long_lines(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(10240 + 1);

	memset(big, 'x', 10240);
	big[10240] = '\0';
	memcpy(big, "name = ", 7);
	expect_error(big, 10240, "t.conf:1: line too long (more than 4095 bytes)");
	big[0] = '#';
	expect_error(big, 10240, "t.conf:1: line too long (more than 4095 bytes)");
	/* 4095 bytes of comment, then a good line: accepted. */
	big[CONF_LINE_MAX - 1] = '\n';
	strcpy(big + CONF_LINE_MAX, "port = 9");
	assert_int_equal(parse(f, big), 0);
	assert_int_equal(f->t.port, 9);
	/* 4096 bytes: rejected. */
	memset(big, '#', CONF_LINE_MAX);
	big[CONF_LINE_MAX] = '\n';
	expect_error(big, CONF_LINE_MAX + 1, "t.conf:1: line too long (more than 4095 bytes)");
	/* A string value of 256 bytes does not fit CONF_STR_MAX. */
	memcpy(big, "name = ", 7);
	memset(big + 7, 'v', CONF_STR_MAX);
	big[7 + CONF_STR_MAX] = '\0';
	expect_error(big, strlen(big), "t.conf:1: name: too long (max 255 bytes)");
	big[7 + CONF_STR_MAX - 1] = '\0';
	assert_int_equal(parse(f, big), 0);
	assert_int_equal(strlen(f->t.name), CONF_STR_MAX - 1);
	free(big);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void parse_real_file(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/test_conf.XXXXXX", want[128];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_file(path, "port = 1234\nidle = 30s\n\nwhat\n");
	assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), -1);
	snprintf(want, sizeof(want), "%s:4: missing '=' (expected key = value)", path);
	assert_string_equal(f->err, want);
	write_file(path, "port = 1234\nidle = 30s\n");
	assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.port, 1234);
	assert_int_equal(f->t.idle, 30000);
	unlink(path);
}

static void missing_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf_parse_file(&f->c, "/nonexistent/x.conf", f->err, sizeof(f->err)), -1);
	assert_string_equal(f->err, "/nonexistent/x.conf: cannot open: No such file or directory");
}

/* chmod 000 stops everyone but root; a directory cannot be read by anyone. */
static void unreadable_file(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/test_conf_dir.XXXXXX", path[64], want[128];

	assert_non_null(mkdtemp(dir));
	assert_int_equal(conf_parse_file(&f->c, dir, f->err, sizeof(f->err)), -1);
	snprintf(want, sizeof(want),
		 "%s: not a regular file (a directory): a config file must be one", dir);
	assert_string_equal(f->err, want);
	snprintf(path, sizeof(path), "%s/locked.conf", dir);
	write_file(path, "port = 1\n");
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0) {
		assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), -1);
		snprintf(want, sizeof(want), "%s: cannot open: Permission denied", path);
		assert_string_equal(f->err, want);
	}
	unlink(path);
	rmdir(dir);
}

static void expect_not_regular(struct fixture *f, const char *path, const char *kind)
{
	char want[256];

	assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file (%s): a config file must be one", path,
		 kind);
	assert_string_equal(f->err, want);
}

/* /dev/zero never ends and a FIFO without a writer blocks open() forever: both are refused
 * at once. The alarm turns a hang into a failure. */
static void only_regular_files(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/test_conf_fifo.XXXXXX", path[64];

	alarm(10);
	expect_not_regular(f, "/dev/zero", "a character device");
	expect_not_regular(f, "/dev/null", "a character device");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo.conf", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_not_regular(f, path, "a FIFO");
	unlink(path);
	rmdir(dir);
	alarm(0);
}

/* Exactly CONF_FILE_MAX bytes are read and parsed (the key on the first line counts);
 * one byte more is refused unparsed. */
static void file_size_bound(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/test_conf_big.XXXXXX", want[128], line[64];
	int fd = mkstemp(path);
	FILE *fp;

	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	memset(line, '#', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	memcpy(line, "port = 1234 ", 12);
	for (size_t n = 0; n < CONF_FILE_MAX; n += sizeof(line)) {
		assert_int_equal(fwrite(line, 1, sizeof(line), fp), sizeof(line));
		memset(line, '#', 12);
	}
	assert_int_equal(fflush(fp), 0);
	assert_int_equal(ftell(fp), CONF_FILE_MAX);
	assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.port, 1234);
	assert_int_equal(fputc('\n', fp), '\n');
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(conf_parse_file(&f->c, path, f->err, sizeof(f->err)), -1);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB: not a config file", path);
	assert_string_equal(f->err, want);
	unlink(path);
}

/* Content quoted in a message is escaped: a byte order mark, C1 controls and bidirectional
 * overrides would otherwise reach the terminal raw (C0 controls are refused earlier, by
 * byte value). */
static void messages_escape_content(void **state)
{
	struct fixture *f = *state;

	(void)f;
	expect_error("\xef\xbb\xbfport = 1\n", 13,
		     "t.conf:1: \\xEF\\xBB\\xBFport: unknown key (the file starts with a UTF-8 "
		     "byte order mark: save it without one)");
	expect_error("port = 1\n\xef\xbb\xbfport = 1\n", 22,
		     "t.conf:2: \\xEF\\xBB\\xBFport: unknown key");
	expect_error("mode = cor\xc2\x85rect\n", 18,
		     "t.conf:1: mode: \"cor\\xC2\\x85rect\" is not one of correct, leaky");
	expect_error("po\xe2\x80\xaert = 1\n", 12, "t.conf:1: po\\xE2\\x80\\xAErt: unknown key");
	expect_error("a\\b = 1\n", 8, "t.conf:1: a\\\\b: unknown key");
	expect_error("caf\xc3\xa9 = 1\n", 11, "t.conf:1: caf\xc3\xa9: unknown key");
	assert_int_equal(conf_set_arg(&f->c, "port=1\xc2\x9b", 2, f->err, sizeof(f->err)), -1);
	assert_string_equal(f->err, "--set:2: port: trailing junk \"\\xC2\\x9B\" after the number");
}

/* The escaper itself: every unit whole or not at all. */
static void escape_cuts_whole_units(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(conf_escape("ab\x01", out, sizeof(out)), 6);
	assert_string_equal(out, "ab\\x01");
	assert_int_equal(conf_escape("abcd\x01", out, sizeof(out)), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(conf_escape("abcde\xc3\xa9", out, sizeof(out)), 7);
	assert_string_equal(out, "abcde\xc3\xa9");
	assert_int_equal(conf_escape("abcdef\xc3\xa9", out, sizeof(out)), 6);
	assert_int_equal(conf_escape("\xff", out, sizeof(out)), 4);
	assert_string_equal(out, "\\xFF");
	assert_int_equal(conf_escape("x", out, 1), 0);
	assert_string_equal(out, "");
}

static void empty_file_is_valid(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, ""), 0);
	assert_int_equal(parse(f, "\n\n# nothing\n"), 0);
	assert_false(conf_was_set(&f->c, "port"));
}

static void defaults_per_mode(void **state)
{
	struct fixture *f = *state, *g;

	f->t.count = 42; /* no default: left as it is */
	assert_int_equal(conf_apply_defaults(&f->c, 0, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.port, 8080);
	assert_int_equal(f->t.timeout, 30000);
	assert_int_equal(f->t.enabled, 1);
	assert_int_equal(f->t.offset, -3);
	assert_int_equal(f->t.heartbeat, 30000);
	assert_string_equal(f->t.name, "teardown");
	assert_int_equal(f->t.count, 42);
	assert_false(conf_was_set(&f->c, "port"));

	g = fixture_new();
	assert_int_equal(conf_apply_defaults(&g->c, 1, g->err, sizeof(g->err)), 0);
	assert_int_equal(g->t.port, 8080); /* def[1] NULL = def[0] */
	assert_int_equal(g->t.timeout, 0); /* def[1] */
	assert_int_equal(g->t.enabled, 0);
	assert_int_equal(g->t.offset, 7);
	assert_int_equal(g->t.heartbeat, 0);
	assert_int_equal(g->t.count, 0);
	assert_int_equal(conf_apply_defaults(&g->c, 2, g->err, sizeof(g->err)), -1);
	fixture_free(g);
}

static void set_keys_keep_their_value(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "timeout = 5s\n"), 0);
	assert_int_equal(conf_set_arg(&f->c, "enabled=yes", 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(conf_apply_defaults(&f->c, 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.timeout, 5000); /* file beats the leaky default 0 */
	assert_int_equal(f->t.enabled, 1);    /* command line beats the leaky default no */
	assert_int_equal(f->t.heartbeat, 0);
}

static void bad_default_is_reported(void **state)
{
	static const struct conf_key bad[] = {
	    {"port", CONF_INT, {"70000", NULL}, 1, 65535, "", "", NULL, 0, 0},
	};
	struct conf c;
	int64_t v = 0;
	char err[CONF_ERR_MAX];

	(void)state;
	assert_int_equal(conf_init(&c, bad, 1, &v), 0);
	assert_int_equal(conf_apply_defaults(&c, 1, err, sizeof(err)), -1);
	assert_string_equal(err,
			    "port: bad default \"70000\" for mode 1: must be between 1 and 65535");
	conf_free(&c);
}

/* The command line wins over the file, in whichever order they are read. */
static void command_line_overrides_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "port = 80\nname = from file\n"), 0);
	assert_int_equal(conf_set_arg(&f->c, "port=81", 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(conf_set_arg(&f->c, " name = from set ", 2, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.port, 81);
	assert_string_equal(f->t.name, "from set");
	/* A file read after --set: checked, not stored. */
	assert_int_equal(parse(f, "port = 82\n"), 0);
	assert_int_equal(f->t.port, 81);
	assert_int_equal(parse(f, "port = 0\n"), -1);
	assert_string_equal(f->err, "t.conf:1: port: must be between 1 and 65535");
	/* The last of several --set of one key wins. */
	assert_int_equal(conf_set_arg(&f->c, "port=83", 3, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->t.port, 83);
	/* '#' is no comment on the command line. */
	assert_int_equal(conf_set_arg(&f->c, "name=a #b", 4, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->t.name, "a #b");
}

static void set_errors(void **state)
{
	static const struct {
		const char *kv;
		int pos;
		const char *err;
	} cases[] = {
	    {"port=0", 2, "--set:2: port: must be between 1 and 65535"},
	    {"port=", 1, "--set:1: port: empty value"},
	    {"bogus=1", 3, "--set:3: bogus: unknown key"},
	    {"port", 1, "--set:1: missing '=' in \"port\" (expected key=value)"},
	    {"=1", 4, "--set:4: missing key before '='"},
	    {"idle=2500ms", 5, "--set:5: idle: must be whole seconds (1s, 2s)"},
	    {"idle=1.5s", 8, "--set:8: idle: must be whole seconds (1s, 2s)"},
	    {"timeout=10", 6, "--set:6: timeout: needs a unit (ms, s, m or h), e.g. 10s"},
	    {"name=a\nb", 7, "--set:7: control byte 0x0a at column 7"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (conf_set_arg(&f->c, cases[i].kv, cases[i].pos, f->err, sizeof(f->err)) != -1)
			fail_msg("accepted --set %s", cases[i].kv);
		assert_string_equal(f->err, cases[i].err);
	}
	assert_false(conf_was_set(&f->c, "port"));
}

static void set_too_long(void **state)
{
	struct fixture *f = *state;
	char *kv = malloc(10241);

	memset(kv, 'a', 10240);
	kv[10240] = '\0';
	memcpy(kv, "name=", 5);
	assert_int_equal(conf_set_arg(&f->c, kv, 1, f->err, sizeof(f->err)), -1);
	assert_string_equal(f->err, "--set:1: too long (more than 4095 bytes)");
	free(kv);
}

static void format_values(void **state)
{
	static const struct {
		const char *key, *in, *out;
	} cases[] = {
	    {"timeout", "0", "0"},
	    {"timeout", "0s", "0"},
	    {"timeout", "90000ms", "90s"},
	    {"timeout", "120s", "2m"},
	    {"timeout", "7200s", "2h"},
	    {"timeout", "1500ms", "1500ms"},
	    {"timeout", "61m", "61m"},
	    {"idle", "3600s", "1h"},
	    {"buffer", "1024", "1k"},
	    {"buffer", "65536", "64k"},
	    {"buffer", "1024k", "1m"},
	    {"buffer", "1536", "1536"},
	    {"buffer", "16M", "16m"},
	    {"enabled", "yes", "yes"},
	    {"enabled", "no", "no"},
	    {"mode", "leaky", "leaky"},
	    {"name", "a b#c", "a b#c"},
	    {"offset", "-42", "-42"},
	    {"port", "00080", "80"},
	    {"heartbeat", "0", "0"},
	    {"count", "9223372036854775807", "9223372036854775807"},
	};
	struct fixture *f = *state;
	char out[CONF_STR_MAX], reason[CONF_ERR_MAX];
	struct tconf back;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct conf_key *k = conf_find(&f->c, cases[i].key);

		assert_non_null(k);
		assert_int_equal(conf_parse_value(k, &f->t, cases[i].in, reason, sizeof(reason)),
				 0);
		conf_format_value(k, &f->t, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
		/* Round trip: the printed form parses back to the same value. */
		memcpy(&back, &f->t, sizeof(back));
		assert_int_equal(conf_parse_value(k, &back, out, reason, sizeof(reason)), 0);
		assert_memory_equal(&back, &f->t, sizeof(back));
	}
}

static void format_out_of_range_enum(void **state)
{
	struct fixture *f = *state;
	char out[16];

	f->t.mode = 7;
	conf_format_value(conf_find(&f->c, "mode"), &f->t, out, sizeof(out));
	assert_string_equal(out, "?");
}

static void parse_value_reason_has_no_prefix(void **state)
{
	struct fixture *f = *state;
	char reason[CONF_ERR_MAX];

	f->t.port = 5;
	assert_int_equal(
	    conf_parse_value(conf_find(&f->c, "port"), &f->t, "0", reason, sizeof(reason)), -1);
	assert_string_equal(reason, "must be between 1 and 65535");
	assert_int_equal(f->t.port, 5); /* untouched on error */
	assert_null(conf_find(&f->c, "nope"));
}

/* A percentage needs its sign (a bare 10 could be a fraction), is whole, in range. */
static void percent_values(void **state)
{
	struct fixture *f = *state;
	char buf[32];

	assert_int_equal(parse(f, "share = 25%\n"), 0);
	assert_int_equal(f->t.share, 25);
	conf_format_value(conf_find(&f->c, "share"), &f->t, buf, sizeof(buf));
	assert_string_equal(buf, "25%");
	expect_error("share = 10\n", 11, "t.conf:1: share: needs a % sign, e.g. 10%");
	expect_error("share = -5%\n", 12, "t.conf:1: share: must not be negative");
	expect_error("share = 150%\n", 13, "t.conf:1: share: must be between 0% and 50%");
	expect_error("share = 10.5%\n", 14,
		     "t.conf:1: share: must be a whole percentage (10%, not 10.5%)");
	expect_error("share = 10%%\n", 13,
		     "t.conf:1: share: trailing junk \"%%\" after the number (expected %)");
	expect_error("share = %\n", 10, "t.conf:1: share: not a number: \"%\"");
}

/* conf_where names the place that set a value, the later one last; a default has none. */
static void where_values_were_set(void **state)
{
	struct fixture *f = *state;
	unsigned a, b;

	assert_int_equal(parse(f, "port = 1\n\ntimeout = 1s\n"), 0);
	assert_int_equal(conf_set_arg(&f->c, "port=2", 1, f->err, sizeof(f->err)), 0);
	assert_string_equal(conf_where(&f->c, "timeout", &a), "t.conf:3");
	assert_string_equal(conf_where(&f->c, "port", &b), "--set:1");
	assert_true(b > a);
	assert_null(conf_where(&f->c, "idle", &a));
	assert_int_equal(a, 0);
	assert_null(conf_where(&f->c, "nosuchkey", NULL));
}

/* An error message that does not fit the caller's buffer is cut, never overflows. */
static void small_error_buffer(void **state)
{
	struct fixture *f = *state;
	char err[8];

	assert_int_equal(conf_parse_buf(&f->c, "t.conf", "bogus = 1", 9, err, sizeof(err)), -1);
	assert_string_equal(err, "t.conf:");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(good_forms),
	    T(duration_and_size_units),
	    T(crlf_and_no_final_newline),
	    T(utf8_comments_allowed),
	    T(bad_numbers),
	    T(bad_units_and_words),
	    T(bad_lines),
	    T(nul_bytes),
	    T(long_lines),
	    T(parse_real_file),
	    T(missing_file),
	    T(unreadable_file),
	    T(only_regular_files),
	    T(file_size_bound),
	    T(messages_escape_content),
	    T(escape_cuts_whole_units),
	    T(empty_file_is_valid),
	    T(defaults_per_mode),
	    T(set_keys_keep_their_value),
	    T(bad_default_is_reported),
	    T(command_line_overrides_file),
	    T(set_errors),
	    T(set_too_long),
	    T(format_values),
	    T(format_out_of_range_enum),
	    T(parse_value_reason_has_no_prefix),
	    T(small_error_buffer),
	    T(percent_values),
	    T(where_values_were_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
