#!/bin/sh
# Install the Debian packages `make bench` needs beyond the build and test
# ones (tests/lib/deps.sh, `make deps`); `make check` never runs this.
# Does nothing when they are all present already.
#   tgt          the target pristined is compared with (bench/tgt.sh runs
#                its own tgtd on its own ports; on a systemd box the package
#                also enables its service on *:3260, which the bench leaves
#                alone and does not use)
#   tgt-rbd      tgt's RBD backing store (bs_rbd), the Ceph anchor of
#                bench/rbd.sh (Ceph itself: tests/lib/deps.sh)
#   iperf3       the loopback ceiling
#   gnuplot-nox  the boot-storm plot (PNG)
#   jq           iperf3's JSON (also in tests/lib/deps.sh)
set -e
PKGS="tgt tgt-rbd iperf3 gnuplot-nox jq"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "bench deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
