/*
 * wake.h - Wake-on-LAN: the magic packet, the networks a PC may be on
 * ([network NAME] of pristine.conf(5)) and the daily wake times (wake-at).
 *
 * A PC is woken by a UDP broadcast of 102 bytes (6 x 0xFF, then its MAC
 * 16 times) on the network it is on: the first [network] whose subnet
 * holds its address - its last login or boot address, or when no network
 * holds that (a login through a NAT or a relay), the first IPv4 address
 * of its ip = rule; with no match the only [network] if there is exactly
 * one, else 255.255.255.255 out of the default route.
 *
 * Nothing here takes the registry's lock: the caller copies what it needs
 * (MAC, address) and sends without it.
 */
#ifndef PRISTINE_WAKE_H
#define PRISTINE_WAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WAKE_PACKET_LEN 102
#define WAKE_DEFAULT_PORT 9
#define WAKE_SENDS 3            /* each packet is sent this many times */
#define WAKE_GAP_MS 5           /* ... this far apart */
#define WAKE_NAME_MAX 64
#define WAKE_IFNAME_MAX 16      /* IFNAMSIZ */

/* [network NAME]: an IPv4 subnet and how to reach its broadcast address. */
struct wake_network {
	char name[WAKE_NAME_MAX];
	uint32_t net;                 /* host order, host bits cleared */
	unsigned prefix;              /* 0..32 */
	uint32_t broadcast;           /* host order: broadcast = or the subnet's */
	char iface[WAKE_IFNAME_MAX];  /* interface = (SO_BINDTODEVICE), "" = routed */
	unsigned port;                /* wake-port =, default 9 */
	int line;                     /* its section header's line */
};

/* wake-at = HH:MM of one [image NAME]. */
struct wake_image_at {
	char image[WAKE_NAME_MAX];
	int at;                       /* minutes after midnight, local time */
};

/* Everything the configuration says about waking; owned by the config
 * (config_free releases the arrays), borrowed by the registry. */
struct wake_conf {
	struct wake_network *nets;
	unsigned nnets;
	struct wake_image_at *ats;
	unsigned nats;
	int default_at;               /* [defaults] wake-at, -1 = none */
};

/* Fill out with the magic packet for mac: 6 x 0xFF then mac 16 times. */
void wake_packet(const uint8_t mac[6], uint8_t out[WAKE_PACKET_LEN]);

/* Parse "aa:bb:cc:dd:ee:ff" (or '-' separators) into mac.  0 or -EINVAL. */
int wake_mac_parse(const char *text, uint8_t mac[6]);

/* The first network whose subnet holds addr (IPv4, host order), or NULL
 * (also for addr 0 and wc NULL). */
const struct wake_network *wake_match(const struct wake_conf *wc, uint32_t addr);

/*
 * The network a PC at addr (IPv4, host order; 0 = unknown) is woken on:
 * wake_match's, else the only network when there is exactly one; NULL =
 * none (broadcast 255.255.255.255 on the default route).  wc may be NULL.
 */
const struct wake_network *wake_choose(const struct wake_conf *wc, uint32_t addr);

/*
 * The daily wake time of a PC of image (minutes after midnight), the
 * image's wake-at, else [defaults] wake-at, else -1.  wc may be NULL.
 */
int wake_at_for(const struct wake_conf *wc, const char *image);

/*
 * The last moment at or before now when the local clock read min minutes
 * after midnight (today's, or yesterday's if today's is still to come).
 * Shared by the daily wakes and the scheduled resets (schedule.c).
 */
time_t daily_last(time_t now, int min);

/*
 * Whether a daily time `at` (minutes after midnight, local) came in
 * (last, now]: the clock passed it since the last look.  at < 0: never.
 */
bool wake_time_came(int at, int64_t last, int64_t now);

/*
 * Wake the PC whose MAC is mac (text) and whose address is addr (as for
 * wake_choose): send the magic packet WAKE_SENDS times, WAKE_GAP_MS
 * apart, to the network's broadcast address and port (SO_BROADCAST, and
 * SO_BINDTODEVICE when the network names an interface).  Blocks for
 * about WAKE_SENDS * WAKE_GAP_MS ms: never call with a lock held.
 * On success returns 0 and via gets "NETWORK (ADDR:PORT on IFACE)".
 * On error -errno and msg says what failed.
 */
int wake_send(const struct wake_conf *wc, const char *mac, uint32_t addr,
	      char *via, size_t vialen, char *msg, size_t msglen);

#endif
