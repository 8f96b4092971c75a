/*
 * check.c - what a failed PR_ASSERT does (check.h).
 */
#include <stdlib.h>

#include "util/check.h"
#include "util/log.h"

_Noreturn void pr_assert_fail(const char *file, int line, const char *func, const char *cond,
			      const char *msg)
{
	log_err("%s:%d: %s: assertion failed: %s%s%s", file, line, func, cond,
		msg ? ": " : "", msg ? msg : "");
	abort();
}
