#!/usr/bin/env bash
# make install into a scratch DESTDIR with PREFIX=/usr, then check the tree:
# programs (sbin/pristined, bin/pristinectl), man pages (man8, man5), the
# systemd unit in PREFIX/lib/systemd/system with ExecStart naming the
# installed daemon, and /etc/pristine.conf.example.  A second install over
# a DESTDIR that has its own etc/pristine.conf must leave it alone.  The
# installed unit is checked with systemd-analyze verify when available
# (its ExecStart pointing into DESTDIR for that check).
. "$(dirname "$0")/../lib/common.sh"
command -v make >/dev/null || skip "make not installed"
dest=$tmpdir/root
# A copy of the tree's build output is reused; `make install` builds only
# what is missing.
make -s -C "$TOP" install DESTDIR="$dest" PREFIX=/usr >"$tmpdir/make.log" 2>&1 \
	|| { cat "$tmpdir/make.log"; fail "make install DESTDIR=$dest PREFIX=/usr failed"; }
echo "installed tree:"
(cd "$dest" && find . -type f -o -type l | sort | sed 's/^/    /')

for f in usr/sbin/pristined usr/bin/pristinectl; do
	[ -x "$dest/$f" ] || fail "$f missing or not executable"
done
for f in usr/share/man/man8/pristined.8 usr/share/man/man8/pristinectl.8 \
	 usr/share/man/man5/pristine.conf.5 usr/lib/systemd/system/pristined.service \
	 etc/pristine.conf.example; do
	[ -f "$dest/$f" ] || fail "$f missing"
	[ "$(stat -c %a "$dest/$f")" = 644 ] || fail "$f has mode $(stat -c %a "$dest/$f"), expected 644"
done
[ ! -e "$dest/etc/pristine.conf" ] || fail "make install created etc/pristine.conf (only the example belongs there)"
cmp -s "$TOP/docs/examples/pristine.conf" "$dest/etc/pristine.conf.example" \
	|| fail "etc/pristine.conf.example differs from docs/examples/pristine.conf"
"$dest/usr/bin/pristinectl" --version | grep -q '^pristinectl ' || fail "installed pristinectl does not run"
"$dest/usr/sbin/pristined" --help >/dev/null 2>&1 || fail "installed pristined --help failed"

unit=$dest/usr/lib/systemd/system/pristined.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
echo "ExecStart=$exec_start"
[ "$(grep -c '^ExecStart=' "$unit")" -eq 1 ] || fail "the unit has not exactly one ExecStart"
[ "${exec_start%% *}" = /usr/sbin/pristined ] || fail "ExecStart names '${exec_start%% *}', not the installed /usr/sbin/pristined"
[ -x "$dest${exec_start%% *}" ] || fail "ExecStart's program is not in the installed tree"
case "$exec_start" in *" -c /etc/pristine.conf") ;; *) fail "ExecStart does not read /etc/pristine.conf";; esac
grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
grep -q /usr/local "$unit" && grep -n /usr/local "$unit" | grep -v '^[0-9]*:#' && fail "the unit still names /usr/local"

# The default PREFIX is /usr/local, and so is the unit's ExecStart.
make -s -C "$TOP" install DESTDIR="$tmpdir/local" >"$tmpdir/make2.log" 2>&1 \
	|| { cat "$tmpdir/make2.log"; fail "make install with the default PREFIX failed"; }
[ -x "$tmpdir/local/usr/local/sbin/pristined" ] || fail "default PREFIX is not /usr/local"
grep -q '^ExecStart=/usr/local/sbin/pristined -c /etc/pristine.conf$' \
	"$tmpdir/local/usr/local/lib/systemd/system/pristined.service" \
	|| fail "default install: ExecStart is not /usr/local/sbin/pristined"

# An admin's own configuration survives a reinstall.
echo "; the admin's own" >"$dest/etc/pristine.conf"
make -s -C "$TOP" install DESTDIR="$dest" PREFIX=/usr >"$tmpdir/make3.log" 2>&1 \
	|| { cat "$tmpdir/make3.log"; fail "second make install failed"; }
[ "$(cat "$dest/etc/pristine.conf")" = "; the admin's own" ] || fail "make install changed etc/pristine.conf"

if command -v systemd-analyze >/dev/null; then
	# verify resolves ExecStart on this host: point it into DESTDIR.
	sed "s|^ExecStart=/usr/sbin/pristined|ExecStart=$dest/usr/sbin/pristined|" "$unit" \
		>"$tmpdir/pristined.service"
	(cd "$tmpdir" && systemd-analyze verify --man=no ./pristined.service) >"$tmpdir/verify.log" 2>&1 \
		|| { cat "$tmpdir/verify.log"; fail "systemd-analyze verify rejects the unit"; }
	[ ! -s "$tmpdir/verify.log" ] || { cat "$tmpdir/verify.log"; fail "systemd-analyze verify warns about the unit"; }
	echo "systemd-analyze verify: OK"
else
	echo "systemd-analyze not installed: unit syntax not verified"
fi
echo PASS
