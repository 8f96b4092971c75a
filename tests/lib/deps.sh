#!/bin/sh
# Install the Debian packages pristine needs to build and test.
# Does nothing when they are all present already.
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
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
