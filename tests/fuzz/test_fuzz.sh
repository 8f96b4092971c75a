#!/usr/bin/env bash
# A short run of every libFuzzer harness (fuzz/fuzz_*.c) under ASan/UBSan:
# FUZZ_SECONDS each (default 10), FUZZ_JOBS of them at once (default 2: a
# fuzzer uses one core).  A crash, leak or sanitizer report fails the test;
# the reproducer is kept in build/fuzz/.  `make fuzz` runs longer.
set -u
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "clang missing (make deps)"; exit 1; }
make -s fuzz-build || { echo "building the fuzzers failed"; exit 1; }

# run_one NAME: fuzz NAME; its verdict in build/fuzz/NAME.verdict (the
# first word "ok" or "FOUND").
run_one() {
	local f=$1 name=${1#fuzz_} corpus log
	corpus=build/fuzz/corpus/$name
	log=build/fuzz/$f.log
	mkdir -p "$corpus"
	cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
	if (cd build/fuzz && ./"$f" -max_total_time="${FUZZ_SECONDS:-10}" -print_final_stats=1 \
		"../../$corpus") >"$log" 2>&1; then
		echo "ok $f: $(grep -E 'number_of_executed_units' "$log" | awk '{print $2}') execs," \
			"$(grep -E 'average_exec_per_sec' "$log" | awk '{print $2}')/s, no findings"
	else
		echo "FOUND $f: FOUND A PROBLEM, see $log (reproducer in build/fuzz/)"
		grep -E 'ERROR|SUMMARY' "$log" | head -5
	fi >"build/fuzz/$f.verdict"
}

fuzzers=()
for src in fuzz/fuzz_*.c; do
	f=$(basename "$src" .c)
	fuzzers+=("$f")
	rm -f "build/fuzz/$f.verdict"
	while [ "$(jobs -rp | wc -l)" -ge "${FUZZ_JOBS:-2}" ]; do wait -n; done
	run_one "$f" &
done
wait
rc=0
for f in "${fuzzers[@]}"; do
	if [ -f "build/fuzz/$f.verdict" ]; then
		sed 's/^ok //; s/^FOUND //' "build/fuzz/$f.verdict"
		grep -q '^ok ' "build/fuzz/$f.verdict" || rc=1
	else
		echo "$f: gave no verdict"; rc=1
	fi
done
exit $rc
