/*
 * demo/bios.S - the demo disk's boot sector (LBA 0), for PCs that boot it
 * through iPXE's sanboot under a BIOS.
 *
 * Contract: entered at 0:7c00 with the boot drive in DL (iPXE's INT 13h
 * hook for the iSCSI disk).  Reads the boot counter sector (LBA 1) with the
 * INT 13h extensions, adds one to it and writes it back, so the count lives
 * in this PC's own overlay and never in the golden image.  Then prints
 *     pristine demo PC: this is boot N on its own overlay
 * on the screen (INT 10h) and on COM1, and, on COM1 only, the line for
 * scripts
 *     PRISTINE-DEMO-BOOTS=N
 * and waits: a key on the keyboard or on COM1 reboots the PC (which boots
 * from the network again and counts one more).  On a disk error it prints
 * "PRISTINE-DEMO-ERROR <step>" (E: no INT 13h extensions, R: reading
 * LBA 1 failed, W: writing it failed) and waits the same way.
 *
 * The counter sector: 16 bytes "PRISTINE-DEMO-C1", then the count as a
 * little-endian 32-bit number (demo/uefi.c reads the same sector).  A sector
 * without the magic counts as 0.  COM1 (0x3f8) is used as the firmware left
 * it: QEMU's UART needs no set-up.  The code must end before byte 446,
 * where demo/mkimage.sh puts the partition table (the .org below fails the
 * build otherwise).
 *
 * Build: as --32 -o bios.o bios.S
 *        ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o mbr.bin bios.o
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
	sti			/* only relative jumps: CS:IP may be 0:7c00 or 7c0:0 */
	cld
	mov	%dl, drive

	movb	$'E', errc
	mov	$0x41, %ah
	mov	$0x55aa, %bx
	int	$0x13
	jc	fail
	cmp	$0xaa55, %bx
	jne	fail

	movb	$'R', errc
	mov	$0x42, %ah
	call	disk
	jc	fail
	/* no magic: a blank counter (count 0) */
	mov	$magic, %si
	mov	$SECTOR, %di
	mov	$16, %cx
	repe cmpsb
	je	1f
	movl	$0, SECTOR + 16
	mov	$magic, %si
	mov	$SECTOR, %di
	mov	$16, %cx
	rep movsb
1:	incl	SECTOR + 16

	movb	$'W', errc
	mov	$0x4300, %ax
	call	disk
	jc	fail

	mov	$s_banner1, %si
	call	puts
	call	putcount
	mov	$s_banner2, %si
	call	puts
	movb	$0, screen		/* the script line: COM1 only */
	mov	$s_boots, %si
	call	puts
	call	putcount
	mov	$s_crlf, %si
	call	puts
	movb	$1, screen
	jmp	wait

/* errc = the step that failed */
fail:
	mov	$s_err, %si
	call	puts
	mov	errc, %al
	call	putc
	mov	$s_crlf, %si
	call	puts

/* Waits for a key (keyboard buffer or COM1 receive), then resets the PC. */
wait:
	mov	$s_key, %si
	call	puts
1:	sti				/* INT 13h may return with IF clear */
	hlt				/* woken by the timer tick */
	mov	$1, %ah
	int	$0x16
	jnz	2f
	mov	$0x3fd, %dx
	in	%dx, %al
	test	$1, %al
	jz	1b
2:	mov	$0xfe, %al		/* keyboard controller: pulse reset */
	out	%al, $0x64
	mov	$0x0cf9, %dx		/* or the PCI reset control register */
	mov	$0x06, %al
	out	%al, %dx
	cli
3:	hlt
	jmp	3b

/* INT 13h function AH (AL = flags) on LBA 1 <-> SECTOR; returns CF, AH. */
disk:
	mov	drive, %dl
	mov	$dap, %si
	int	$0x13
	ret

/* Prints the count (dword at SECTOR + 16) in decimal. */
putcount:
	mov	SECTOR + 16, %eax
	mov	$10, %ebx
	xor	%cx, %cx
1:	xor	%edx, %edx
	div	%ebx
	push	%dx
	inc	%cx
	test	%eax, %eax
	jnz	1b
2:	pop	%ax
	add	$'0', %al
	call	putc
	loop	2b
	ret

putc:		/* AL to COM1 and, when screen is set, to the screen */
	push	%ax
	push	%bx
	push	%dx
	mov	%al, %bl
	mov	$0x3fd, %dx
1:	in	%dx, %al
	test	$0x20, %al
	jz	1b
	mov	$0x3f8, %dx
	mov	%bl, %al
	out	%al, %dx
	cmpb	$0, screen
	je	2f
	mov	$0x0e, %ah
	mov	$0x0007, %bx
	int	$0x10
2:	pop	%dx
	pop	%bx
	pop	%ax
	ret

puts:		/* SI: a NUL-terminated string */
	lodsb
	test	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

	.set	SECTOR, 0x8000
dap:	.byte	16, 0
	.word	1			/* one sector */
	.word	SECTOR, 0		/* buffer 0:8000 */
	.quad	1			/* LBA 1 */
drive:	.byte	0
errc:	.byte	'?'
screen:	.byte	1
magic:	.ascii	"PRISTINE-DEMO-C1"
s_banner1: .asciz "pristine demo PC: this is boot "
s_banner2: .ascii " on its own overlay"
s_crlf:	.asciz	"\r\n"
s_boots: .asciz	"PRISTINE-DEMO-BOOTS="
s_err:	.asciz	"PRISTINE-DEMO-ERROR "
s_key:	.asciz	"Any key reboots.\r\n"
	.org	446
	.fill	64, 1, 0		/* the partition table (demo/mkimage.sh) */
	.word	0xaa55
