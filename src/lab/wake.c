/*
 * wake.c - Wake-on-LAN (see wake.h): the magic packet, the choice of a
 * network and the UDP broadcast that carries it.
 */
#include "lab/wake.h"
#include "util/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void wake_packet(const uint8_t mac[6], uint8_t out[WAKE_PACKET_LEN])
{
	memset(out, 0xff, 6);
	for (int i = 0; i < 16; i++)
		memcpy(out + 6 + 6 * i, mac, 6);
}

int wake_mac_parse(const char *text, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		const char *p = text + 3 * i;
		int hi = parse_hexdigit(p[0]), lo = hi < 0 ? -1 : parse_hexdigit(p[1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		if (i < 5 ? (p[2] != ':' && p[2] != '-') : p[2] != '\0')
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

const struct wake_network *wake_match(const struct wake_conf *wc, uint32_t addr)
{
	for (unsigned i = 0; wc && addr && i < wc->nnets; i++) {
		const struct wake_network *n = &wc->nets[i];
		uint32_t mask = n->prefix ? 0xffffffffu << (32 - n->prefix) : 0;

		if ((addr & mask) == n->net)
			return n;
	}
	return NULL;
}

const struct wake_network *wake_choose(const struct wake_conf *wc, uint32_t addr)
{
	const struct wake_network *n = wake_match(wc, addr);

	if (n || !wc)
		return n;
	return wc->nnets == 1 ? &wc->nets[0] : NULL;
}

int wake_at_for(const struct wake_conf *wc, const char *image)
{
	if (!wc)
		return -1;
	for (unsigned i = 0; image && i < wc->nats; i++)
		if (strcmp(wc->ats[i].image, image) == 0)
			return wc->ats[i].at;
	return wc->default_at;
}

time_t daily_last(time_t now, int min)
{
	struct tm tm;
	time_t t;

	localtime_r(&now, &tm);
	tm.tm_hour = min / 60;
	tm.tm_min = min % 60;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t > now) {                /* today's is still to come: yesterday's */
		tm.tm_mday -= 1;
		tm.tm_hour = min / 60;
		tm.tm_min = min % 60;
		tm.tm_sec = 0;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	return t;
}

bool wake_time_came(int at, int64_t last, int64_t now)
{
	time_t t;

	if (at < 0 || now <= last)
		return false;
	t = daily_last((time_t)now, at);
	return t > last && t <= (time_t)now;
}

int wake_send(const struct wake_conf *wc, const char *mac, uint32_t addr,
	      char *via, size_t vialen, char *msg, size_t msglen)
{
	const struct wake_network *n = wake_choose(wc, addr);
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint8_t hw[6], pkt[WAKE_PACKET_LEN];
	char dst[INET_ADDRSTRLEN];
	int fd, one = 1, rc = 0;

	if (!mac || wake_mac_parse(mac, hw)) {
		snprintf(msg, msglen, "no MAC address to wake");
		return -EINVAL;
	}
	wake_packet(hw, pkt);
	to.sin_addr.s_addr = htonl(n ? n->broadcast : INADDR_BROADCAST);
	to.sin_port = htons((uint16_t)(n ? n->port : WAKE_DEFAULT_PORT));
	inet_ntop(AF_INET, &to.sin_addr, dst, sizeof(dst));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(msg, msglen, "socket: %s", strerror(errno));
		return rc;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one))) {
		rc = -errno;
		snprintf(msg, msglen, "SO_BROADCAST: %s", strerror(errno));
		goto out;
	}
	if (n && n->iface[0] &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, n->iface, (socklen_t)strlen(n->iface))) {
		rc = -errno;
		snprintf(msg, msglen, "network %s: cannot send out of interface %s: %s", n->name,
			 n->iface, strerror(errno));
		goto out;
	}
	for (int i = 0; i < WAKE_SENDS; i++) {
		struct timespec gap = { 0, WAKE_GAP_MS * 1000000L };

		if (i)
			nanosleep(&gap, NULL);
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			rc = -errno;
			snprintf(msg, msglen, "send to %s:%u: %s", dst, ntohs(to.sin_port),
				 strerror(errno));
			goto out;
		}
	}
	if (n)
		snprintf(via, vialen, "%s (%s:%u%s%s)", n->name, dst, n->port,
			 n->iface[0] ? " on " : "", n->iface);
	else
		snprintf(via, vialen, "default route (%s:%u)", dst, WAKE_DEFAULT_PORT);
out:
	close(fd);
	return rc;
}
