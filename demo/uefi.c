/*
 * demo/uefi.c - the demo disk's UEFI program, \EFI\BOOT\BOOTX64.EFI on the
 * disk's EFI system partition, for PCs that boot it through iPXE's sanboot
 * under UEFI.  It does what demo/bios.S does under a BIOS, on the same
 * counter sector, so a PC's count goes on whichever firmware boots it:
 *
 *   - finds the demo disk: the whole-disk Block I/O device (not a
 *     partition) with 512-byte blocks whose LBA 1 starts with the magic
 *     "PRISTINE-DEMO-C1" (the disk it was started from, in practice);
 *   - adds one to the little-endian 32-bit count after the magic and writes
 *     the sector back (into this PC's overlay, never the golden image);
 *   - prints "pristine demo PC: this is boot N on its own overlay" with
 *     ConOut (the screen; OVMF also copies it to the serial port) and the
 *     line for scripts "PRISTINE-DEMO-BOOTS=N" straight to COM1 (0x3f8);
 *   - waits for a key (ConIn: keyboard or serial terminal), then reboots.
 * On failure it prints "PRISTINE-DEMO-ERROR <what>" both ways and waits.
 *
 * No UEFI headers are needed: the few tables and protocols used are
 * declared below, with the layout the UEFI specification gives them.
 * Built freestanding by demo/mkimage.sh (gcc -ffreestanding -fpie, linked
 * into a PE32+ EFI application with ld -m i386pep); everything is reached
 * RIP-relative, so the image needs no relocations.
 */
#include <stdint.h>

#define EFIAPI __attribute__((ms_abi))
typedef uint64_t efi_status;
typedef void *efi_handle;
typedef uint16_t char16;

struct efi_guid {
	uint32_t a;
	uint16_t b, c;
	uint8_t d[8];
};

struct efi_table_header {
	uint64_t signature;
	uint32_t revision, header_size, crc32, reserved;
};

struct efi_input_key {
	uint16_t scan_code;
	char16 unicode_char;
};

struct efi_text_in {
	void *reset;
	efi_status (EFIAPI *read_key)(struct efi_text_in *self, struct efi_input_key *key);
	void *wait_for_key;
};

struct efi_text_out {
	void *reset;
	efi_status (EFIAPI *output_string)(struct efi_text_out *self, const char16 *s);
};

struct efi_boot_services {
	struct efi_table_header hdr;
	void *raise_tpl, *restore_tpl;
	void *allocate_pages, *free_pages, *get_memory_map, *allocate_pool;
	efi_status (EFIAPI *free_pool)(void *buf);
	void *create_event, *set_timer;
	efi_status (EFIAPI *wait_for_event)(uint64_t n, void **events, uint64_t *index);
	void *signal_event, *close_event, *check_event;
	void *install_protocol, *reinstall_protocol, *uninstall_protocol;
	efi_status (EFIAPI *handle_protocol)(efi_handle h, const struct efi_guid *g, void **iface);
	void *reserved, *register_protocol_notify, *locate_handle, *locate_device_path;
	void *install_configuration_table;
	void *load_image, *start_image, *exit, *unload_image, *exit_boot_services;
	void *get_next_monotonic_count, *stall;
	efi_status (EFIAPI *set_watchdog_timer)(uint64_t secs, uint64_t code, uint64_t size,
						 char16 *data);
	void *connect_controller, *disconnect_controller;
	void *open_protocol, *close_protocol, *open_protocol_information;
	void *protocols_per_handle;
	efi_status (EFIAPI *locate_handle_buffer)(int type, const struct efi_guid *g, void *key,
						   uint64_t *count, efi_handle **handles);
};

struct efi_runtime_services {
	struct efi_table_header hdr;
	void *get_time, *set_time, *get_wakeup_time, *set_wakeup_time;
	void *set_virtual_address_map, *convert_pointer;
	void *get_variable, *get_next_variable_name, *set_variable;
	void *get_next_high_monotonic_count;
	void (EFIAPI *reset_system)(int type, efi_status status, uint64_t size, void *data);
};

struct efi_system_table {
	struct efi_table_header hdr;
	char16 *firmware_vendor;
	uint32_t firmware_revision;
	efi_handle con_in_handle;
	struct efi_text_in *con_in;
	efi_handle con_out_handle;
	struct efi_text_out *con_out;
	efi_handle std_err_handle;
	struct efi_text_out *std_err;
	struct efi_runtime_services *rt;
	struct efi_boot_services *bs;
};

struct efi_block_io_media {
	uint32_t media_id;
	uint8_t removable, present, logical_partition, read_only, write_caching;
	uint32_t block_size, io_align;
	uint64_t last_block;
};

struct efi_block_io {
	uint64_t revision;
	struct efi_block_io_media *media;
	void *reset;
	efi_status (EFIAPI *read_blocks)(struct efi_block_io *self, uint32_t media_id,
					  uint64_t lba, uint64_t size, void *buf);
	efi_status (EFIAPI *write_blocks)(struct efi_block_io *self, uint32_t media_id,
					   uint64_t lba, uint64_t size, void *buf);
	efi_status (EFIAPI *flush_blocks)(struct efi_block_io *self);
};

#define BY_PROTOCOL 2
#define RESET_COLD 0

static const struct efi_guid block_io_guid = {
	0x964e5b21, 0x6459, 0x11d2, { 0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b } };

static const char magic[16] = "PRISTINE-DEMO-C1";

/* The counter sector, aligned for any IoAlign a block device asks for. */
static uint8_t sector[512] __attribute__((aligned(4096)));

static struct efi_system_table *st;

/* Writes one byte to COM1 once its transmitter holds nothing. */
static void com1_putc(char c)
{
	uint8_t lsr;

	do
		__asm__ volatile("inb %1, %0" : "=a"(lsr) : "Nd"((uint16_t)0x3fd));
	while (!(lsr & 0x20));
	__asm__ volatile("outb %0, %1" : : "a"((uint8_t)c), "Nd"((uint16_t)0x3f8));
}

/* Prints an ASCII string on ConOut (as UTF-16, "\n" as CR LF) and, when
 * serial is set, on COM1. */
static void say(const char *s, int serial)
{
	char16 buf[96];
	unsigned n = 0;

	for (; *s; s++) {
		if (*s == '\n')
			buf[n++] = '\r';
		buf[n++] = (unsigned char)*s;
		if (serial) {
			if (*s == '\n')
				com1_putc('\r');
			com1_putc(*s);
		}
		if (n >= sizeof(buf) / sizeof(buf[0]) - 3) {
			buf[n] = 0;
			st->con_out->output_string(st->con_out, buf);
			n = 0;
		}
	}
	buf[n] = 0;
	st->con_out->output_string(st->con_out, buf);
}

/* Writes v in decimal into out (at least 11 bytes), NUL-terminated. */
static void decimal(uint32_t v, char *out)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = tmp[--n];
	*out = 0;
}

static int same(const void *a, const void *b, unsigned n)
{
	const uint8_t *x = a, *y = b;

	while (n--)
		if (*x++ != *y++)
			return 0;
	return 1;
}

/* Finds the demo disk; returns its Block I/O protocol with its LBA 1 in
 * sector[], or NULL. */
static struct efi_block_io *find_disk(void)
{
	struct efi_boot_services *bs = st->bs;
	struct efi_block_io *found = 0;
	efi_handle *handles;
	uint64_t count, i;

	if (bs->locate_handle_buffer(BY_PROTOCOL, &block_io_guid, 0, &count, &handles))
		return 0;
	for (i = 0; i < count && !found; i++) {
		struct efi_block_io *bio;

		if (bs->handle_protocol(handles[i], &block_io_guid, (void **)&bio))
			continue;
		if (!bio->media->present || bio->media->logical_partition ||
		    bio->media->block_size != sizeof(sector) || bio->media->last_block < 1)
			continue;
		if (bio->read_blocks(bio, bio->media->media_id, 1, sizeof(sector), sector))
			continue;
		if (same(sector, magic, sizeof(magic)))
			found = bio;
	}
	bs->free_pool(handles);
	return found;
}

/* Waits for a key, then reboots the PC. */
static void wait_and_reboot(void)
{
	struct efi_input_key key;
	uint64_t index;

	say("Any key reboots.\n", 0);
	st->bs->wait_for_event(1, &st->con_in->wait_for_key, &index);
	st->con_in->read_key(st->con_in, &key);
	st->rt->reset_system(RESET_COLD, 0, 0, 0);
	for (;;)
		__asm__ volatile("hlt");
}

EFIAPI efi_status efi_main(efi_handle image, struct efi_system_table *systab);

/* The entry point: counts this boot, shows it, waits for a key. */
EFIAPI efi_status efi_main(efi_handle image, struct efi_system_table *systab)
{
	struct efi_block_io *bio;
	uint32_t n;
	char num[11];

	(void)image;
	st = systab;
	/* The firmware's watchdog would reset the PC after 5 minutes of waiting. */
	st->bs->set_watchdog_timer(0, 0, 0, 0);
	bio = find_disk();
	if (!bio) {
		say("PRISTINE-DEMO-ERROR no disk with the demo counter\n", 1);
		wait_and_reboot();
	}
	__builtin_memcpy(&n, sector + 16, 4);
	n++;
	__builtin_memcpy(sector + 16, &n, 4);
	if (bio->write_blocks(bio, bio->media->media_id, 1, sizeof(sector), sector) ||
	    bio->flush_blocks(bio)) {
		say("PRISTINE-DEMO-ERROR writing the counter\n", 1);
		wait_and_reboot();
	}
	decimal(n, num);
	say("\npristine demo PC: this is boot ", 0);
	say(num, 0);
	say(" on its own overlay\n", 0);
	for (const char *p = "PRISTINE-DEMO-BOOTS="; *p; p++)
		com1_putc(*p);
	for (const char *p = num; *p; p++)
		com1_putc(*p);
	com1_putc('\r');
	com1_putc('\n');
	wait_and_reboot();
	return 0;
}
