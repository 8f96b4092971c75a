# tests/lib/conformance.sh - reading libiscsi's iscsi-test-cu output, for
# tests/conformance/test_conformance.sh and tests/ceph/test_rbd_conformance.sh.
#
#   conf_classify LOG    prints "RESULT Suite.Test" per test (pass, fail,
#                        skip): CUnit counts a skipped test as passed, so a
#                        test that printed "[SKIPPED]" is a skip
#   conf_allowed DOC     the skips docs/conformance.md allows: its lines
#                        "- `Suite.Test`: reason"

conf_classify() {
	awk '
	/^Suite: / { suite = $2; next }
	/^  Test: / {
		name = $0; sub(/^  Test: /, "", name); sub(/ \.\.\..*/, "", name)
		test = suite "." name; skipped = 0; open = 1
	}
	open && /\[SKIPPED\]/ { skipped = 1 }
	# The result may share its line with the first message of the next test.
	open && /(\.\.\.|^)passed/ { print (skipped ? "skip " : "pass ") test; open = 0; next }
	open && /(\.\.\.|^)FAILED( |$)/ { print "fail " test; open = 0; next }
	' "$1"
}

conf_allowed() {
	sed -n 's/^- `\([A-Za-z0-9_.-]*\)`:.*/\1/p' "$1"
}

# conf_verdict LABEL RESULTS DOC: count RESULTS' pass/fail/skip lines
# (conf_classify's output), print them as "LABEL: N passed, ...", and fail
# unless more than 400 tests ran, none failed and every skip (also a
# "4k:" one) is listed as allowed in DOC (conf_allowed).
conf_verdict() {
	local label=$1 results=$2 doc=$3 npass nfail nskip rc=0 allowed t
	npass=$(grep -c '^pass ' "$results")
	nfail=$(grep -c '^fail ' "$results")
	nskip=$(grep -c '^skip ' "$results")
	echo "$label: $npass passed, $nfail failed, $nskip skipped (logs in $(dirname "$results"))"
	[ $((npass + nfail + nskip)) -gt 400 ] || fail "only $((npass + nfail + nskip)) tests ran; see $(dirname "$results")"
	if [ "$nfail" -gt 0 ]; then
		echo "failed tests:"; grep '^fail ' "$results" | sed 's/^fail /  /'
		rc=1
	fi
	allowed=$(conf_allowed "$doc")
	while read -r _ t; do
		if ! grep -qxF "${t#4k:}" <<<"$allowed"; then
			echo "skip not documented in docs/conformance.md: $t"
			rc=1
		fi
	done < <(grep '^skip ' "$results")
	[ "$rc" -eq 0 ] || fail "$label: $nfail failed, undocumented skips above"
}
