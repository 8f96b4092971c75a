#!/bin/sh
# tests/lib/deps.sh [SET] - install the Debian packages of one set; does
# nothing when they are all present already.  SET is
#   run   building and running the daemon and making the demo disk (make run)
#   pc    a demo PC: QEMU, Debian's iPXE ROMs, OVMF, socat (make demo-pc)
#   all   everything make check needs, a superset of both (the default)
# dnsmasq-base, not dnsmasq: the tests run their own dnsmasq in a network
# namespace; the full package would also start a system DNS service.
set -e
PKGS="build-essential pkg-config libisal-dev libcmocka-dev
      libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev curl libinih-dev
      libiscsi-bin qemu-utils qemu-system-x86 ipxe-qemu binutils
      socat python3 iproute2 procps clang libclang-rt-14-dev
      qemu-block-extra coreutils
      ovmf dosfstools mtools
      libiscsi-dev jq
      libsystemd-dev dnsmasq-base ipxe nettle-dev groff-base"
# git: tests/demo/test_first_run.sh clones the checkout.
PKGS="$PKGS git"
# A throwaway Ceph cluster for tests/ceph/ (tests/lib/ceph.sh).
PKGS="$PKGS ceph-mon ceph-osd ceph-common"
# The cluster tests (tests/cluster/): gateways' failover addresses by VRRP
# (tests/lib/keepalived.sh).
PKGS="$PKGS keepalived"
# The web console's browser tests (headless Chromium through Selenium) and
# the metrics test (a real Prometheus and its promtool).
PKGS="$PKGS chromium chromium-driver python3-selenium prometheus"
# The Linux diskless client of tests/cluster/test_cluster_linuxpc.sh
# (tests/cluster/linuxpc_lib.sh): Debian's kernel, iscsistart, busybox.
# Installed apart (below, set all only) and allowed to fail: a box where a
# kernel package cannot be installed skips that one test, nothing else.
LINUXPC_PKGS="linux-image-amd64 open-iscsi busybox-static cpio"
# binutils, gcc (build-essential), dosfstools, mtools: demo/mkimage.sh.
# libsodium-dev, libgnutls28-dev: the web console's password hash and its
# self-signed certificate (src/console/).
# librbd-dev, librados-dev: pristined links librbd (golden images on Ceph
# RBD, storage/rbd.c), whether or not an image is on RBD.
RUN_PKGS="build-essential pkg-config libisal-dev libmicrohttpd-dev libjansson-dev
      libcurl4-openssl-dev libinih-dev libsystemd-dev nettle-dev binutils
      librbd-dev librados-dev dosfstools mtools libsodium-dev libgnutls28-dev"
PC_PKGS="qemu-system-x86 ipxe-qemu ovmf socat"
case ${1:-all} in
run) PKGS=$RUN_PKGS ;;
pc)  PKGS=$PC_PKGS ;;
all) PKGS="$PKGS $RUN_PKGS $PC_PKGS" ;;
*)   echo "usage: $0 [run|pc|all]" >&2; exit 2 ;;
esac
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
linuxpc_missing=""
if [ "${1:-all}" = all ]; then
	for p in $LINUXPC_PKGS; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			linuxpc_missing="$linuxpc_missing $p"
	done
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && [ -z "$linuxpc_missing" ] && exit 0
$SUDO apt-get update -qq
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	# Several builds may install at once: wait for dpkg's lock, do not fail.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=600 -y -qq \
		--no-install-recommends $missing
fi
# Last, so that a kernel package that fails cannot stop the others.
if [ -n "$linuxpc_missing" ]; then
	echo "deps: installing$linuxpc_missing (the Linux diskless client's; may fail)"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=600 -y -qq \
		--no-install-recommends $linuxpc_missing ||
		echo "deps: the Linux client's packages did not install: test_cluster_linuxpc will skip"
fi
