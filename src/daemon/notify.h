/*
 * notify.h - tell systemd (Type=notify) when pristined is ready and when
 * it is stopping, through sd_notify(3).
 *
 * Both calls do nothing when the daemon was not started by systemd (no
 * NOTIFY_SOCKET in the environment), never fail the caller, and may be
 * called from any thread.  A failure to notify is logged as a warning:
 * systemd then times the start out, which says more than we could.
 */
#ifndef PRISTINE_NOTIFY_H
#define PRISTINE_NOTIFY_H

/*
 * Send READY=1, with status (may be NULL; copied, control characters
 * replaced) as the unit's STATUS= line shown by `systemctl status`.
 * Call once every portal is bound and the admin API and boot endpoint
 * answer: systemd starts the units ordered after pristined at that moment.
 */
void notify_ready(const char *status);

/* Send STOPPING=1: shutdown has begun (on SIGTERM, before draining). */
void notify_stopping(void);

#endif
