#include "plan.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void plan_init(struct plan *p, const struct client_opts *o)
{
	memset(p, 0, sizeof(*p));
	p->nworkers = o->procs > 0 ? (int)o->procs : 1;
	p->connections = (uint64_t)o->connections;
	p->scenario = o->scenario;
	p->mix = o->mix;
	p->src_first = o->src_first;
	p->nsources = o->nsources;
	p->mix_per_source = o->nsources > 1 && o->mix.total > 1;
	p->messages = (uint64_t)o->messages;
	p->endless_echo = o->scenario == SCEN_ECHO && o->duration_ms > 0;
	/* Held until the run ends only when holding is the whole run; in a mix, for --hold,
	 * so that the mix does not fill up with held connections. */
	p->hold_whole_run = o->duration_ms > 0 && o->scenario != SCEN_MIXED;
	p->hold_ms = o->hold_ms;
	p->rate = (double)o->rate / p->nworkers;
	p->reconnect_rate = (double)o->reconnect_rate / p->nworkers;
	p->msg_rate = o->total_message_rate > 0
			  ? (double)o->total_message_rate / (double)o->connections
			  : (double)o->message_rate;
	p->arrivals = o->arrivals;
	p->stages = o->stages.n > 0 ? &o->stages : NULL;
	p->rate_stages = o->rate_stages.n > 0 ? &o->rate_stages : NULL;
}

uint64_t plan_share(uint64_t n, int worker, int nworkers)
{
	return n / (uint64_t)nworkers + ((uint64_t)worker < n % (uint64_t)nworkers ? 1 : 0);
}

uint64_t plan_slots(const struct plan *p, int worker)
{
	return plan_share(p->connections, worker, p->nworkers);
}

uint64_t plan_target(const struct plan *p, int worker, double t_ms)
{
	if (p->stages == NULL)
		return plan_slots(p, worker);
	return plan_share((uint64_t)llround(stages_at(p->stages, 0, t_ms)), worker, p->nworkers);
}

int plan_runs(const struct plan *p, int s)
{
	return mix_runs(&p->mix, s);
}

uint32_t plan_source(const struct plan *p, uint64_t id)
{
	return htonl(p->src_first + (uint32_t)(id % (uint64_t)p->nsources));
}

int plan_worker_init(struct plan_worker *w, const struct plan *p, int worker)
{
	memset(w, 0, sizeof(*w));
	w->p = p;
	w->worker = worker;
	if (p->mix_per_source &&
	    (w->src_mix = calloc((size_t)p->nsources, sizeof(*w->src_mix))) == NULL)
		return -1;
	return 0;
}

void plan_worker_free(struct plan_worker *w)
{
	free(w->src_mix);
	w->src_mix = NULL;
}

void plan_next(struct plan_worker *w, struct plan_conn *c)
{
	const struct plan *p = w->p;
	uint64_t k = w->next++;

	c->id = (uint64_t)w->worker + (uint64_t)p->nworkers * k;
	if (w->src_mix != NULL)
		c->scenario = mix_pick(&p->mix, w->src_mix[c->id % (uint64_t)p->nsources]++);
	else
		c->scenario = mix_pick(&p->mix, k);
	if (c->scenario == SCEN_SILENT || c->scenario == SCEN_VANISH)
		c->messages = 1;
	else if (c->scenario == SCEN_IDLE || (c->scenario == SCEN_ECHO && p->endless_echo))
		c->messages = UINT64_MAX;
	else
		c->messages = p->messages;
	c->hold_ms = p->hold_whole_run ? 0 : p->hold_ms;
	c->msg_rate = scenario_holds(c->scenario) ? 0 : p->msg_rate;
	c->arrivals = p->arrivals;
	c->start_us = 0;
}
