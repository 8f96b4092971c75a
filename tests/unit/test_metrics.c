/*
 * test_metrics.c - the Prometheus exposition (src/admin/metrics.c) and the
 * counters under it (src/util/iostats.c).
 *
 * Exposition: label values with a backslash, a quote and a newline come
 * out escaped as format 0.0.4 says; a histogram's per-bucket counts come
 * out as cumulative _bucket lines in order, le="+Inf" last and equal to
 * _count, with _sum; every family has one HELP and one TYPE line, before
 * its samples, and counters end in _total.
 * Counters: a command lands in the latency bucket its time belongs to
 * (bounds inclusive), bytes count only for commands that succeeded,
 * errors only for MEDIUM/HARDWARE ERROR and DATA PROTECT in fixed or
 * descriptor sense (not ILLEGAL REQUEST).  Boots: a script-started boot
 * is timed from the script to the last READ before a 5 s gap; a
 * login-started one from its first READ; a boot with no READ is counted
 * but not timed; a boot that never settles ends after 10 minutes; a login
 * during an open boot does not begin another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>

#include "admin/metrics.h"
#include "util/iostats.h"

#define S 1000000000LL

/* A histogram object of the stats document with counts c[0..n-1] (+Inf last). */
static json_t *hist(const double *le, const long long *c, size_t nle, double sum)
{
	json_t *l = json_array(), *n = json_array();
	long long total = 0;

	for (size_t i = 0; i < nle; i++)
		json_array_append_new(l, json_real(le[i]));
	for (size_t i = 0; i <= nle; i++) {
		json_array_append_new(n, json_integer(c[i]));
		total += c[i];
	}
	return json_pack("{s:o, s:o, s:f, s:I}", "le", l, "counts", n, "sum", sum, "count", total);
}

static json_t *doc(void)
{
	static const double le[3] = { 0.0001, 0.00025, 1 };
	static const long long c[4] = { 2, 0, 3, 1 };
	json_t *client = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				   "name", "pc\\1\"x\ny", "image", "win10",
				   "read_bytes", (json_int_t)4096, "read_cmds", (json_int_t)1,
				   "write_bytes", (json_int_t)8192, "write_cmds", (json_int_t)2,
				   "errors", (json_int_t)0, "sessions", (json_int_t)1,
				   "boots", (json_int_t)3);

	json_object_set_new(client, "read_latency", hist(le, c, 3, 1.5));
	json_object_set_new(client, "last_boot_seconds", json_null());
	return json_pack("{s:I, s:{s:s, s:I, s:{s:I, s:I}}, s:[o], s:[{s:s, s:I}]}",
			 "time_ms", (json_int_t)1,
			 "server", "version", "1.2.3", "sessions", (json_int_t)1,
			 "refused", "unknown", (json_int_t)4, "chap", (json_int_t)0,
			 "clients", client,
			 "images", "name", "win10", "read_bytes", (json_int_t)4096);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void test_exposition(void **state)
{
	json_t *d = doc();
	size_t len = 0;
	char *t = metrics_text(d, &len);
	const char *L = "{client=\"pc\\\\1\\\"x\\ny\",image=\"win10\"";

	(void)state;
	assert_non_null(t);
	assert_int_equal(len, strlen(t));
	/* escaping: backslash, quote, newline */
	char want[512];
	snprintf(want, sizeof(want), "pristine_read_bytes_total%s} 4096", L);
	assert_true(has_line(t, want));
	snprintf(want, sizeof(want), "pristine_write_commands_total%s} 2", L);
	assert_true(has_line(t, want));
	assert_true(has_line(t, "pristine_image_read_bytes_total{image=\"win10\"} 4096"));
	assert_true(has_line(t, "pristine_refused_logins_total{reason=\"unknown\"} 4"));
	assert_true(has_line(t, "pristine_refused_logins_total{reason=\"chap\"} 0"));
	assert_true(has_line(t, "pristine_build_info{version=\"1.2.3\"} 1"));
	assert_true(has_line(t, "# TYPE pristine_read_latency_seconds histogram"));
	assert_true(has_line(t, "# TYPE pristine_read_bytes_total counter"));
	assert_true(has_line(t, "# TYPE pristine_sessions gauge"));
	/* cumulative buckets in order, +Inf = count */
	const char *b[] = { "le=\"0.0001\"} 2", "le=\"0.00025\"} 2", "le=\"1\"} 5", "le=\"+Inf\"} 6" };
	const char *prev = t;
	for (size_t i = 0; i < 4; i++) {
		snprintf(want, sizeof(want), "pristine_read_latency_seconds_bucket%s,%s", L, b[i]);
		assert_true(has_line(t, want));
		const char *at = strstr(t, want);
		assert_true(at > prev);
		prev = at;
	}
	snprintf(want, sizeof(want), "pristine_read_latency_seconds_count%s} 6", L);
	assert_true(has_line(t, want));
	snprintf(want, sizeof(want), "pristine_read_latency_seconds_sum%s} 1.5", L);
	assert_true(has_line(t, want));
	/* a null last boot is no sample; no histogram given, no _bucket */
	assert_null(strstr(t, "pristine_last_boot_seconds{"));
	assert_null(strstr(t, "pristine_write_latency_seconds_bucket"));
	/* one HELP and TYPE per family, before its first sample */
	const char *h = strstr(t, "# HELP pristine_read_bytes_total ");
	assert_non_null(h);
	assert_null(strstr(h + 1, "# HELP pristine_read_bytes_total "));
	assert_true(h < strstr(t, "pristine_read_bytes_total{"));
	free(t);
	json_decref(d);
}

static void test_counters(void **state)
{
	struct iostats st;
	struct iostats_snap s;
	const uint8_t medium[18] = { 0x70, 0, 0x03 }, illegal[18] = { 0x70, 0, 0x05 };
	const uint8_t desc_hw[8] = { 0x72, 0x04 }, protect[18] = { 0x70, 0, 0x07 };

	(void)state;
	memset(&st, 0, sizeof(st));
	iostats_cmd_done(&st, IOSTATS_READ, 4096, 100000, false);          /* = 100 us: first bucket */
	iostats_cmd_done(&st, IOSTATS_READ, 4096, 100001, false);          /* second */
	iostats_cmd_done(&st, IOSTATS_READ, 0, 11 * S, true);              /* beyond 10 s: +Inf */
	iostats_cmd_done(&st, IOSTATS_WRITE, 512, 3 * 1000000, false);     /* 3 ms: <= 5 ms */
	iostats_cmd_done(&st, IOSTATS_OTHER, 0, 1, true);                  /* a failed SYNC CACHE */
	iostats_cmd_done(NULL, IOSTATS_READ, 1, 1, false);                 /* no counters: nothing */
	iostats_snapshot(&st, &s);
	assert_int_equal(s.read_cmds, 3);
	assert_int_equal(s.read_bytes, 8192);
	assert_int_equal(s.write_cmds, 1);
	assert_int_equal(s.write_bytes, 512);
	assert_int_equal(s.errors, 2);
	assert_int_equal(s.read_lat[0], 1);
	assert_int_equal(s.read_lat[1], 1);
	assert_int_equal(s.read_lat[IOSTATS_LAT_BUCKETS], 1);
	assert_int_equal(s.write_lat[5], 1);
	assert_int_equal(iostats_lat_bounds_ns[5], 5 * 1000000);
	assert_int_equal(s.read_lat_sum_ns, 100000 + 100001 + 11 * S);

	assert_true(iostats_is_error(0x02, medium, sizeof(medium)));
	assert_true(iostats_is_error(0x02, desc_hw, sizeof(desc_hw)));
	assert_true(iostats_is_error(0x02, protect, sizeof(protect)));
	assert_false(iostats_is_error(0x02, illegal, sizeof(illegal)));
	assert_false(iostats_is_error(0x00, medium, sizeof(medium)));
	assert_false(iostats_is_error(0x02, medium, 0));
	assert_int_equal(iostats_kind_of(0x28), IOSTATS_READ);
	assert_int_equal(iostats_kind_of(0x8a), IOSTATS_WRITE);
	assert_int_equal(iostats_kind_of(0x35), IOSTATS_OTHER);
}

static void test_boots(void **state)
{
	struct boot_track b;
	struct boot_snap s;
	int64_t t = 1000 * S;

	(void)state;
	boot_track_init(&b);
	boot_poll(&b, t, &s);
	assert_int_equal(s.boots, 0);
	assert_int_equal(s.last_ms, -1);

	/* script at t, reads at t+2..t+12 s every second, then quiet */
	boot_begin(&b, t, true);
	for (int i = 2; i <= 12; i++)
		boot_note_read(&b, t + i * S);
	boot_poll(&b, t + 14 * S, &s);                 /* 2 s quiet: still booting */
	assert_true(s.open);
	assert_int_equal(s.boots, 1);
	boot_poll(&b, t + 17 * S, &s);                 /* 5 s quiet: booted in 12 s */
	assert_false(s.open);
	assert_int_equal(s.last_ms, 12000);
	assert_int_equal(s.hist_count, 1);
	assert_int_equal(s.hist[2], 1);                /* (10, 15] */

	/* a login: timed from its first READ; a second login changes nothing;
	 * the settle is seen by the next READ itself */
	t += 100 * S;
	boot_begin(&b, t, false);
	boot_begin(&b, t + 1 * S, false);
	boot_note_read(&b, t + 3 * S);
	boot_note_read(&b, t + 6 * S);
	boot_note_read(&b, t + 20 * S);                /* 14 s later: the boot ended at t+6 */
	boot_poll(&b, t + 20 * S, &s);
	assert_int_equal(s.boots, 2);
	assert_false(s.open);
	assert_int_equal(s.last_ms, 3000);
	assert_int_equal(s.hist[0], 1);

	/* a script with no READ: counted, not timed, ends after 10 minutes */
	t += 100 * S;
	boot_begin(&b, t, true);
	boot_poll(&b, t + 60 * S, &s);
	assert_true(s.open);
	boot_poll(&b, t + 601 * S, &s);
	assert_false(s.open);
	assert_int_equal(s.boots, 3);
	assert_int_equal(s.hist_count, 2);

	/* reads that never settle: the boot ends at 10 minutes, timed 600 s */
	t += 1000 * S;
	boot_begin(&b, t, true);
	for (int i = 0; i <= 700; i++)
		boot_note_read(&b, t + i * S);
	boot_poll(&b, t + 700 * S, &s);
	assert_false(s.open);
	assert_int_equal(s.last_ms, 600000);
	assert_int_equal(s.hist[12], 1);               /* (450, 600] */
	assert_int_equal(s.hist_sum_ms, 12000 + 3000 + 600000);
	boot_track_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_boots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
