/*
 * jobs.c - background admin jobs (see jobs.h).
 */
#include "lab/jobs.h"
#include "util/log.h"
#include "util/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct job {
	struct job *next;
	unsigned id;
	char kind[16];
	char image[64];
	char phase[32];
	enum job_state state;
	uint64_t done, total;
	char result[512];
	int64_t started, ended;
	job_fn fn;
	void *arg;
	void (*free_arg)(void *);
	pthread_t th;
	bool joined;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *jobs;         /* newest first */
static unsigned next_id = 1;
static bool stopping;

static const char *state_name(enum job_state s)
{
	return s == JOB_RUNNING ? "running" : s == JOB_DONE ? "done" : "failed";
}

/* Forget finished jobs beyond JOBS_KEEP.  Lock held. */
static void trim(void)
{
	unsigned kept = 0;

	for (struct job **pp = &jobs; *pp;) {
		struct job *j = *pp;
		if (j->state != JOB_RUNNING && ++kept > JOBS_KEEP) {
			*pp = j->next;
			if (!j->joined)
				pthread_join(j->th, NULL);
			free(j);
			continue;
		}
		pp = &j->next;
	}
}

static void *job_main(void *p)
{
	struct job *j = p;
	char msg[512] = "";
	int rc = j->fn(j, j->arg, msg, sizeof(msg));

	if (j->free_arg)
		j->free_arg(j->arg);
	pthread_mutex_lock(&jobs_lock);
	j->state = rc ? JOB_FAILED : JOB_DONE;
	/* A finished job's phase is its end, not the step it was in: the
	 * JSON says what the human list says. */
	snprintf(j->phase, sizeof(j->phase), "%s", state_name(j->state));
	if (!rc && j->total)
		j->done = j->total;   /* progress 1.0 and done_bytes agree */
	if (rc)
		snprintf(j->result, sizeof(j->result), "%s", msg[0] ? msg : strerror(-rc));
	j->ended = (int64_t)time(NULL);
	events_add(rc ? EV_ERROR : EV_IMAGE, NULL, j->image, "%s job %u %s%s%s", j->kind, j->id,
		   state_name(j->state), rc ? ": " : "", rc ? j->result : "");
	if (rc)
		log_err("job %u (%s %s) failed: %s", j->id, j->kind, j->image, j->result);
	else
		log_notice("job %u (%s %s) done%s%s", j->id, j->kind, j->image,
			   j->result[0] ? ": " : "", j->result);
	pthread_mutex_unlock(&jobs_lock);
	return NULL;
}

int job_start(const char *kind, const char *image, job_fn fn, void *arg,
	      void (*free_arg)(void *), unsigned *id)
{
	struct job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return -ENOMEM;
	snprintf(j->kind, sizeof(j->kind), "%s", kind);
	snprintf(j->image, sizeof(j->image), "%s", image);
	j->fn = fn;
	j->arg = arg;
	j->free_arg = free_arg;
	snprintf(j->phase, sizeof(j->phase), "starting");   /* until the job names its step */
	j->started = (int64_t)time(NULL);
	pthread_mutex_lock(&jobs_lock);
	if (stopping) {
		pthread_mutex_unlock(&jobs_lock);
		free(j);
		return -ESHUTDOWN;
	}
	j->id = next_id++;
	rc = pthread_create(&j->th, NULL, job_main, j);
	if (rc) {
		pthread_mutex_unlock(&jobs_lock);
		free(j);
		return -rc;
	}
	j->next = jobs;
	jobs = j;
	*id = j->id;
	trim();
	pthread_mutex_unlock(&jobs_lock);
	log_notice("job %u started: %s %s", j->id, kind, image);
	return 0;
}

void job_progress(struct job *j, uint64_t done, uint64_t total)
{
	pthread_mutex_lock(&jobs_lock);
	j->done = done;
	j->total = total;
	pthread_mutex_unlock(&jobs_lock);
}

void job_phase(struct job *j, const char *phase)
{
	pthread_mutex_lock(&jobs_lock);
	snprintf(j->phase, sizeof(j->phase), "%s", phase);
	pthread_mutex_unlock(&jobs_lock);
}

void job_result(struct job *j, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&jobs_lock);
	va_start(ap, fmt);
	vsnprintf(j->result, sizeof(j->result), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&jobs_lock);
}

bool job_cancelled(const struct job *j)
{
	(void)j;
	return __atomic_load_n(&stopping, __ATOMIC_RELAXED);
}

/* Lock held. */
static json_t *job_to_json(const struct job *j)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", (int)j->id,
			      "kind", j->kind, "image", j->image, "state", state_name(j->state),
			      "phase", j->phase, "done_bytes", (json_int_t)j->done,
			      "total_bytes", (json_int_t)j->total, "started", (json_int_t)j->started);
	json_object_set_new(o, "progress", json_real(j->state == JOB_DONE ? 1.0 :
				    j->total ? (double)j->done / (double)j->total : 0.0));
	if (j->state != JOB_RUNNING)
		json_object_set_new(o, "ended", json_integer((json_int_t)j->ended));
	if (j->state == JOB_FAILED)
		json_object_set_new(o, "error", json_string(j->result));
	else if (j->result[0])
		json_object_set_new(o, "result", json_string(j->result));
	return o;
}

json_t *jobs_list_json(void)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&jobs_lock);
	for (struct job *j = jobs; j; j = j->next)
		json_array_append_new(arr, job_to_json(j));
	pthread_mutex_unlock(&jobs_lock);
	return json_pack("{s:o}", "jobs", arr);
}

int job_json(unsigned id, json_t **out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&jobs_lock);
	for (struct job *j = jobs; j; j = j->next)
		if (j->id == id) {
			*out = job_to_json(j);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&jobs_lock);
	return rc;
}

void jobs_stop(void)
{
	pthread_mutex_lock(&jobs_lock);
	__atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
	for (;;) {
		struct job *j = jobs;
		while (j && j->joined)
			j = j->next;
		if (!j)
			break;
		j->joined = true;
		pthread_mutex_unlock(&jobs_lock);
		pthread_join(j->th, NULL);
		pthread_mutex_lock(&jobs_lock);
	}
	while (jobs) {
		struct job *j = jobs;
		jobs = j->next;
		free(j);
	}
	pthread_mutex_unlock(&jobs_lock);
}
