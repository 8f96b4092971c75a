#!/usr/bin/env bash
# Runs every test of the project and prints one closing line
# "N passed, N failed, N skipped".  A test is an executable
#   build/asan/unit/test_*           C unit tests (cmocka)
#   build/release-unit/test_*        the same against the release objects (test_check)
#   tests/<area>/test_*.sh|.py       tests against a live daemon
# Exit status 0 = pass, 77 = skip (with a reason on stdout), else fail.
# TESTS="pattern" limits the run to tests whose path matches the pattern.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0; skip=0; failed=()
logdir=build/test-logs
mkdir -p "$logdir"
mapfile -t tests < <(ls build/asan/unit/test_* build/release-unit/test_* 2>/dev/null; ls tests/*/test_*.sh tests/*/test_*.py 2>/dev/null | sort)
for t in "${tests[@]}"; do
	[ -x "$t" ] || continue
	if [ -n "${TESTS:-}" ] && [[ "$t" != *${TESTS}* ]]; then continue; fi
	log="$logdir/$(echo "$t" | tr '/' '_').log"
	start=$(date +%s)
	timeout --kill-after=10 "${TEST_TIMEOUT:-1200}" "$t" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0)  pass=$((pass+1)); echo "PASS  $t (${secs}s)";;
	77) skip=$((skip+1)); echo "SKIP  $t: $(tail -n 1 "$log")";;
	*)  fail=$((fail+1)); failed+=("$t"); echo "FAIL  $t (rc=$rc, ${secs}s) - last lines of $log:"
	    tail -n 30 "$log" | sed 's/^/      /';;
	esac
done
echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
