/*
 * log.h - leveled logging to stderr.
 *
 * One line per message.  When stderr is connected to journald (the
 * JOURNAL_STREAM variable names our stderr), lines carry the "<N>" syslog
 * priority prefix so journald files them at the right level; otherwise a
 * timestamp and the level name are printed.  Thread-safe: each line is
 * written with a single write(2).
 */
#ifndef PRISTINE_LOG_H
#define PRISTINE_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };

/* Messages above this level are dropped.  Default LOG_INFO. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error|warn|notice|info|debug"; returns 0 or -1 if unknown. */
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Copy untrusted text (from the wire) into buf for logging: control
 * characters and bytes above 0x7e become '?', and long text is cut.
 * Returns buf.
 */
const char *log_safe(const char *s, char *buf, size_t len);

#define log_err(...)    log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
