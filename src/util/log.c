/*
 * log.c - leveled logging to stderr (see log.h).
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

static enum log_level g_level = LOG_INFO;
static int g_journal = -1; /* -1 unknown, 0 no, 1 yes */

static const char *const g_names[8] = {
	"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

void log_set_level(enum log_level lvl) { g_level = lvl; }
enum log_level log_get_level(void) { return g_level; }

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++) {
		if (strcasecmp(s, g_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* journald sets JOURNAL_STREAM=dev:ino of the stream it gave us. */
static int detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[1024];
	int n;
	va_list ap;

	if (lvl > g_level)
		return;
	if (g_journal < 0)
		g_journal = detect_journal();
	if (g_journal) {
		n = snprintf(line, sizeof(line), "<%d>", (int)lvl);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %-6s ",
			     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
			     g_names[lvl]);
	}
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* Best effort: nothing sensible to do if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *log_safe(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return "";
	for (; s && s[i] && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
	}
	buf[i] = '\0';
	return buf;
}
