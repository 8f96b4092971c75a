#!/bin/sh
# demo/mkimage.sh OUT - builds the demo disk that `make run` serves, a 16 MiB
# raw image a PC really boots, under a BIOS (through iPXE's sanboot) and
# under UEFI:
#
#   LBA 0        MBR: demo/bios.S, and one partition (type 0xef)
#   LBA 1        the boot counter: "PRISTINE-DEMO-C1" and a 32-bit count, 0
#   LBA 2048..   the EFI system partition (FAT, made with mkfs.fat and
#                mtools) with \EFI\BOOT\BOOTX64.EFI = demo/uefi.c
#
# Each boot adds one to the counter in the PC's own overlay, so the golden
# image keeps 0.  The image is reproducible: the same sources give the same
# bytes (no time stamps, a fixed volume id).  Needs binutils, gcc,
# dosfstools and mtools (tests/lib/deps.sh run).  OUT is written whole or
# not at all.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
OUT=$1
DEMO=$(cd "$(dirname "$0")" && pwd)
MIB=16
ESP_START=2048				# LBA of the EFI system partition
ESP_SECTORS=$(( (MIB * 2048) - ESP_START ))
work=$(mktemp -d "${TMPDIR:-/tmp}/pristine-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The boot sector.
as --32 -o "$work/bios.o" "$DEMO/bios.S"
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$work/mbr.bin" "$work/bios.o"
[ "$(stat -c %s "$work/mbr.bin")" -eq 512 ] || { echo "mkimage: bios.S is not 512 bytes" >&2; exit 1; }

# The UEFI program: freestanding, position-independent, linked into PE32+.
${CC:-cc} -std=gnu11 -Wall -Wextra -Werror -Wmissing-prototypes -Os -ffreestanding -fno-builtin \
	-fno-stack-protector -fno-stack-check -fpie -mno-red-zone -fno-asynchronous-unwind-tables \
	-fno-tree-loop-distribute-patterns -fno-ident -c -o "$work/uefi.o" "$DEMO/uefi.c"
ld -m i386pep --subsystem 10 -e efi_main --no-insert-timestamp -o "$work/BOOTX64.EFI" "$work/uefi.o"

# The EFI system partition; every FAT time stamp is SOURCE_DATE_EPOCH's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}	# 2026-01-01
export MTOOLS_SKIP_CHECK=1
touch -d "@$SOURCE_DATE_EPOCH" "$work/BOOTX64.EFI"
mkfs.fat --invariant -i 50524953 -n PRISTINE -C "$work/esp.img" $((ESP_SECTORS / 2)) >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -m -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

# The disk.  Partition entry: not active, CHS fields "beyond 8 GiB" (fe ff
# ff), type 0xef, first LBA 2048, ESP_SECTORS sectors (little-endian).
le32() { printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 24 & 255)))"; }
truncate -s "${MIB}M" "$work/disk.img"
dd if="$work/mbr.bin" of="$work/disk.img" conv=notrunc status=none
{ printf '\000\376\377\377\357\376\377\377'; le32 "$ESP_START"; le32 "$ESP_SECTORS"; } |
	dd of="$work/disk.img" bs=1 seek=446 conv=notrunc status=none
printf 'PRISTINE-DEMO-C1' | dd of="$work/disk.img" bs=512 seek=1 conv=notrunc status=none
dd if="$work/esp.img" of="$work/disk.img" bs=512 seek="$ESP_START" conv=notrunc status=none
[ "$(stat -c %s "$work/disk.img")" -eq $((MIB * 1048576)) ] || { echo "mkimage: wrong image size" >&2; exit 1; }
mv "$work/disk.img" "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"
