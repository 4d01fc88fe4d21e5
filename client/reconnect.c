#include "reconnect.h"

enum close_verdict reconnect_verdict(const struct close_facts *f)
{
	if (f->reconnect)
		return f->stopping ? CLOSE_BY_SERVER : CLOSE_RECONNECT;
	if (f->held && f->silent)
		return CLOSE_BY_SERVER;
	return CLOSE_FAILED;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t reconnect_delay_us(int64_t delay_ms, uint64_t id, uint64_t n)
{
	int64_t d = delay_ms * 1000;
	/* 53 random bits: a double in [0, 1). */
	double u =
	    (double)(mix64(mix64(id) ^ (n * 0xd1342543de82ef95ULL)) >> 11) / 9007199254740992.0;

	if (d <= 0)
		return 0;
	return d / 2 + (int64_t)(u * (double)d);
}

void bucket_init(struct bucket *b, double rate, int64_t now_us)
{
	b->rate = rate;
	b->cap = rate / 100.0 > 1.0 ? rate / 100.0 : 1.0;
	b->tokens = 1.0;
	b->t_us = now_us;
}

int64_t bucket_take(struct bucket *b, int64_t now_us)
{
	if (b->rate <= 0)
		return 0;
	if (now_us > b->t_us) {
		b->tokens += (double)(now_us - b->t_us) * b->rate / 1e6;
		if (b->tokens > b->cap)
			b->tokens = b->cap;
		b->t_us = now_us;
	}
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	/* Rounded up: woken at that time, the token is there. */
	return (int64_t)((1.0 - b->tokens) * 1e6 / b->rate) + 1;
}
