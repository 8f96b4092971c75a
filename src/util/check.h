/*
 * check.h - debug-build assertions of invariants.
 *
 * PR_ASSERT(cond) states something about in-memory state that this
 * program itself produced and that must hold at that point (the storage
 * invariants of storage/overlay_int.h, a map's counters, a chain's source
 * table).  It is active only when PRISTINE_DEBUG is defined, which the
 * Makefile does for the sanitizer and fuzz builds (make asan, make unit,
 * make fuzz-build), never for the release build: there cond is not
 * evaluated at all (only type-checked), so a check may cost what it needs.
 * A failed check logs "file:line: function: assertion failed: cond" (and
 * the message of PR_ASSERT_MSG) and aborts, leaving a core or the
 * sanitizer's report to work from.
 *
 * Never on input: bytes read from disk or off the wire get an error path
 * (corruption keeps returning its dedicated error), not an assertion.
 *
 * PR_CHECK(expr): expr yields NULL when all is well or a static string
 * naming the first violation found (for checkers that walk a structure,
 * e.g. ovl_map_check); a non-NULL result fails like PR_ASSERT_MSG.
 */
#ifndef PRISTINE_CHECK_H
#define PRISTINE_CHECK_H

#include <stdbool.h>

#ifdef PRISTINE_DEBUG
#define PR_DEBUG_BUILD true
#define PR_ASSERT(cond) \
	((cond) ? (void)0 : pr_assert_fail(__FILE__, __LINE__, __func__, #cond, NULL))
#define PR_ASSERT_MSG(cond, msg) \
	((cond) ? (void)0 : pr_assert_fail(__FILE__, __LINE__, __func__, #cond, (msg)))
#define PR_CHECK(expr) \
	do { \
		const char *pr_why_ = (expr); \
		if (pr_why_) \
			pr_assert_fail(__FILE__, __LINE__, __func__, #expr, pr_why_); \
	} while (0)
#else
#define PR_DEBUG_BUILD false
#define PR_ASSERT(cond) ((void)sizeof(!(cond)))
#define PR_ASSERT_MSG(cond, msg) ((void)sizeof(!(cond)), (void)sizeof(msg))
#define PR_CHECK(expr) ((void)sizeof(expr))
#endif

/*
 * Report a failed check at file:line in func (cond as written, msg may
 * be NULL) on stderr through the log, then abort().  Never returns.
 */
_Noreturn void pr_assert_fail(const char *file, int line, const char *func, const char *cond,
			      const char *msg);

#endif
