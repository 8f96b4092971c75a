/*
 * tests/boot/uefiapp.S - the UEFI application test_sanboot_uefi.sh puts at
 * \EFI\BOOT\BOOTX64.EFI of a FAT partition in the image.
 *
 * Once iPXE's UEFI sanboot has found and started it (the firmware reading
 * the partition table, the FAT file system and this file through iPXE's
 * EFI block device), it prints PRISTINE-UEFI-OK with ConOut->OutputString
 * (OVMF mirrors the console on the serial port) and powers the machine
 * off with RuntimeServices->ResetSystem(EfiResetShutdown).
 * x86-64 UEFI calling convention: ImageHandle in RCX, SystemTable in RDX;
 * callee needs 32 bytes of shadow space and a 16-byte aligned stack.
 *
 * Build: as --64 -o app.o uefiapp.S
 *        ld -m i386pep --subsystem 10 -e efi_main -o BOOTX64.EFI app.o
 */
	.text
	.globl efi_main
efi_main:
	sub	$40, %rsp		/* shadow space, realign */
	mov	%rdx, %rbx		/* EFI_SYSTEM_TABLE */
	mov	64(%rbx), %rcx		/* ->ConOut */
	lea	msg(%rip), %rdx
	call	*8(%rcx)		/* ConOut->OutputString(ConOut, msg) */
	mov	88(%rbx), %rax		/* ->RuntimeServices */
	mov	$2, %ecx		/* EfiResetShutdown */
	xor	%edx, %edx		/* EFI_SUCCESS */
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	call	*104(%rax)		/* ->ResetSystem: does not return */
	add	$40, %rsp
	xor	%eax, %eax
	ret

	.data
msg:	.string16 "\r\nPRISTINE-UEFI-OK\r\n"
