/*
 * jobs.h - long-running admin operations (flatten, import, export) run on
 * a thread of their own; the API reports their progress.
 *
 * A job has an id (1, 2, ...), a kind, the image it works on, a state
 * (running, done, failed), progress as done/total bytes and, when it
 * ends, a one-line result or error.  The last JOBS_KEEP finished jobs are
 * remembered for the API.  Thread-safe (a lock of its own).
 */
#ifndef PRISTINE_JOBS_H
#define PRISTINE_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBS_KEEP 32

struct job;

/*
 * The work: returns 0 (done; job_result may have set a message) or -errno
 * with a message in msg.  It calls job_progress as it goes, and should
 * return -ECANCELED soon after job_cancelled() turns true (daemon stop).
 * free_arg (may be NULL) is called on arg when the job ends.
 */
typedef int (*job_fn)(struct job *j, void *arg, char *msg, size_t msglen);

/* Start a job.  0 and *id, or -errno. */
int job_start(const char *kind, const char *image, job_fn fn, void *arg,
	      void (*free_arg)(void *), unsigned *id);
void job_progress(struct job *j, uint64_t done, uint64_t total);
/* A phase label shown with the progress ("copying", "converting"...).
 * "starting" before the first call; "done" or "failed" once the job has
 * ended, whatever it was last. */
void job_phase(struct job *j, const char *phase);
void job_result(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool job_cancelled(const struct job *j);

/* {"jobs":[...]} and one job; -ENOENT if unknown. */
json_t *jobs_list_json(void);
int job_json(unsigned id, json_t **out);

/* Ask running jobs to stop and wait for them (at exit). */
void jobs_stop(void);

#endif
