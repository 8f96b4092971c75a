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
