#!/usr/bin/env bash
# A short run of every libFuzzer harness (fuzz/fuzz_*.c) under ASan/UBSan:
# FUZZ_SECONDS each (default 10).  A crash, leak or sanitizer report fails
# the test; the reproducer is kept in build/fuzz/.  `make fuzz` runs longer.
set -u
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "clang missing (make deps)"; exit 1; }
make -s fuzz-build || { echo "building the fuzzers failed"; exit 1; }
rc=0
for src in fuzz/fuzz_*.c; do
	f=$(basename "$src" .c); name=${f#fuzz_}
	corpus=build/fuzz/corpus/$name
	mkdir -p "$corpus"
	cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
	log=build/fuzz/$f.log
	if (cd build/fuzz && ./"$f" -max_total_time="${FUZZ_SECONDS:-10}" -print_final_stats=1 \
		"../../$corpus") >"$log" 2>&1; then
		echo "$f: $(grep -E 'number_of_executed_units' "$log" | awk '{print $2}') execs," \
			"$(grep -E 'average_exec_per_sec' "$log" | awk '{print $2}')/s, no findings"
	else
		echo "$f: FOUND A PROBLEM, see $log (reproducer in build/fuzz/)"
		grep -E 'ERROR|SUMMARY' "$log" | head -5
		rc=1
	fi
done
exit $rc
