/*
 * tests/boot/bootsector.S - the boot sector test_sanboot.sh puts in LBA 0.
 *
 * Runs after iPXE's sanboot hooked INT 13h (drive number in DL).  Reports
 * on COM1 (polled 16550 at 0x3f8, left as the firmware set it up):
 *   PRISTINE-BOOT-START drive=<hex>
 *   PRISTINE-BOOT-OK LBA3=<first 15 bytes of LBA 3, raw>   or
 *   PRISTINE-BOOT-ERR <step> <AH in hex>   step: E no INT 13h extensions,
 *       R read LBA 1 failed, M LBA 1 marker wrong, W write LBA 2 failed,
 *       V read-back of LBA 2 failed, C LBA 2 read back differs,
 *       3 read of LBA 3 failed
 * Steps: INT 13h AH=41h; AH=42h read LBA 1, compare its first 32 bytes
 * with marker1; AH=43h write LBA 2 = marker2 + 480 bytes 0x5a; AH=42h read
 * LBA 2 back into a cleared buffer and compare all 512 bytes; AH=42h read
 * LBA 3 and print its first 15 bytes after "OK LBA3=" (test_boot_lab.sh
 * puts a per-client marker there; test images hold "LBA000000000003").
 * Then writes 0x10 (ok) or 0x11 (error) to port 0xf4 (QEMU isa-debug-exit) and halts.
 *
 * Build: as --32 -o bs.o bootsector.S
 *        ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o bs.bin bs.o
 */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %sp
	sti
	ljmp	$0, $start2
start2:
	cld
	mov	%dl, drive
	/* COM1 is used as QEMU (and SeaBIOS) left it: no UART set-up */
	mov	$s_hello, %si; call puts
	mov	drive, %al; call puthex; call crlf

	/* INT 13h extensions present? */
	movb	$'E', errc
	mov	$0x41, %ah; mov $0x55aa, %bx	/* DL: still the drive (putc keeps DX) */
	int	$0x13
	jc	fail
	cmp	$0xaa55, %bx
	jne	fail

	/* read LBA 1 to 0x8000 and check the marker */
	movb	$'R', errc
	movw	$0x8000, dap_buf; movw $1, dap_lba
	mov	$0x42, %ah; call disk
	jc	fail
	movb	$'M', errc
	mov	$marker1, %si; mov $0x8000, %di; mov $32, %cx
	repe cmpsb
	jne	fail

	/* build sector at 0x9000: marker2 then 480 bytes 0x5a */
	mov	$marker2, %si; mov $0x9000, %di; mov $32, %cx; rep movsb
	mov	$0x5a, %al; mov $480, %cx; rep stosb
	/* write it to LBA 2 */
	movb	$'W', errc
	movw	$0x9000, dap_buf; movw $2, dap_lba
	mov	$0x4300, %ax; call disk
	jc	fail
	/* clear 0xa000, read LBA 2 back there, compare */
	mov	$0xa000, %di; xor %al, %al; mov $512, %cx; rep stosb
	movb	$'V', errc
	movw	$0xa000, dap_buf; movw $2, dap_lba
	mov	$0x42, %ah; call disk
	jc	fail
	mov	$0x9000, %si; mov $0xa000, %di; mov $512, %cx
	repe cmpsb
	movb	$'C', errc
	jne	fail

	/* read LBA 3 (to 0xa000) and print its first 15 bytes after OK */
	movb	$'3', errc
	movw	$3, dap_lba
	mov	$0x42, %ah; call disk
	jc	fail
	mov	$s_ok, %si; call puts
	mov	$0xa000, %si; mov $15, %cx
1:	lodsb; call putc; loop 1b
	call	crlf
	mov	$0x10, %al
	jmp	done

/* errc = error letter, AH = BIOS status (when relevant) */
fail:
	push	%ax
	mov	$s_err, %si; call puts
	mov	errc, %al; call putc
	mov	$' ', %al; call putc
	pop	%ax
	mov	%ah, %al; call puthex; call crlf
	mov	$0x11, %al
done:
	out	%al, $0xf4		/* isa-debug-exit, if present */
halt:	cli
	hlt
	jmp	halt

/* AH = function; DAP set up; returns CF, AH */
disk:
	mov	drive, %dl
	mov	$dap, %si
	movw	$1, dap_cnt
	int	$0x13
	ret

putc:	/* AL */
	push	%dx
	push	%ax
	mov	$0x3fd, %dx
1:	in	%dx, %al
	test	$0x20, %al
	jz	1b
	pop	%ax
	mov	$0x3f8, %dx
	out	%al, %dx
	pop	%dx
	ret
puts:	/* SI */
	lodsb
	test	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret
crlf:	mov	$13, %al; call putc; mov $10, %al; jmp putc
puthex:	/* AL */
	push	%ax
	shr	$4, %al; call hexdig
	pop	%ax
	and	$0x0f, %al
hexdig:	cmp	$10, %al
	jb	1f
	add	$'a'-'0'-10, %al
1:	add	$'0', %al
	jmp	putc

	.align 4
dap:	.byte 16, 0
dap_cnt: .word 1
dap_buf: .word 0, 0
dap_lba: .quad 0
drive:	.byte 0
errc:	.byte '?'
s_hello: .asciz "PRISTINE-BOOT-START drive="
s_ok:	.asciz "PRISTINE-BOOT-OK LBA3="
s_err:	.asciz "PRISTINE-BOOT-ERR "
marker1: .ascii "PRISTINE-TEST-LBA1-MARKER-5d3e91"
marker2: .ascii "PRISTINE-WROTE-LBA2-BY-INT13-43h"
	.org 510
	.word 0xaa55
