/*
 * ctl_pxe.c - `pristinectl pxe dnsmasq`: print a dnsmasq configuration
 * that takes PCs from their firmware's PXE to pristined's boot endpoint.
 *
 * The chain it sets up:
 *   firmware PXE --DHCP--> dnsmasq: a boot file name
 *   --TFTP--> undionly.kpxe (BIOS) or ipxe.efi (UEFI), Debian's package ipxe
 *   iPXE --DHCP again--> dnsmasq sees user class "iPXE" / option 175 and
 *   answers http://SERVER:PORT/boot.ipxe instead of the binary (otherwise
 *   iPXE would load itself forever) --HTTP--> the PC's own sanboot script.
 *
 * Two modes.  Proxy DHCP (the default) runs beside the site's DHCP
 * server: dnsmasq gives no addresses, only boot information
 * (dhcp-range=NET,proxy plus pxe-service entries; dnsmasq also puts the
 * dhcp-boot file of a matching tag into its proxy offers, which is how
 * the iPXE branch gets its URL).  Full DHCP (--full) makes dnsmasq the
 * network's DHCP server for --range.
 *
 * Facts relied on (dnsmasq(8), 2.90; iPXE's chainloading notes):
 * dhcp-userclass and dhcp-match set tags, dhcp-boot and pxe-service take
 * tag:NAME / tag:!NAME; pxe-service's CSA names x86PC, x86-64_EFI (7) and
 * BC_EFI (9); a pxe-service basename with a suffix gets no ".0"; port=0
 * turns DNS off; iPXE sends user class "iPXE" and option 175.
 *
 * The daemon is asked only for its boot port (GET /v1/status); the
 * server's address comes from --server, --interface, or the address the
 * boot endpoint is bound to.  Nothing but checked IPv4 addresses, a
 * checked interface name and a port number reaches the output.
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Debian's package ipxe puts its binaries here; dnsmasq serves the directory. */
#define IPXE_DIR "/usr/lib/ipxe"
#define IPXE_BIOS "undionly.kpxe"
#define IPXE_UEFI "ipxe.efi"

/* What the configuration is built from. */
struct pxe_plan {
	bool full;			/* full DHCP, else proxy */
	struct in_addr server;		/* where PCs reach the boot endpoint and TFTP */
	struct in_addr mask;		/* its netmask, 0 when unknown */
	char iface[IFNAMSIZ];		/* "" = every interface */
	struct in_addr first, last, rmask;	/* --range (full), rmask 0 if not given */
	int port;			/* boot endpoint's TCP port */
	int iscsi_port;			/* for the comment only, 0 if unknown */
	char version[32];		/* pristined's version, for the comment */
};

static bool mask_valid(struct in_addr m)
{
	uint32_t h = ntohl(m.s_addr);

	return h && ((~h + 1) & ~h) == 0;	/* ones then zeros */
}

/* An interface name that is safe to write into the file. */
static bool iface_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._-@", s[i])))
			return false;
	return true;
}

/*
 * Look through the host's IPv4 interfaces: with iface set, take its
 * first address into *addr and *mask (0 if it has none); otherwise find
 * *addr and fill *mask and iface_out (may be NULL).  Returns 0 when
 * found, -1 when not (or getifaddrs failed).
 */
static int if_lookup(const char *iface, struct in_addr *addr, struct in_addr *mask,
		     char *iface_out, size_t iface_len)
{
	struct ifaddrs *ifa, *p;
	int rc = -1;

	if (getifaddrs(&ifa))
		return -1;
	for (p = ifa; p; p = p->ifa_next) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)p->ifa_addr;
		const struct sockaddr_in *m = (const struct sockaddr_in *)p->ifa_netmask;

		if (!a || a->sin_family != AF_INET || !p->ifa_name)
			continue;
		if (iface ? strcmp(p->ifa_name, iface) : a->sin_addr.s_addr != addr->s_addr)
			continue;
		*addr = a->sin_addr;
		mask->s_addr = m && m->sin_family == AF_INET ? m->sin_addr.s_addr : 0;
		if (iface_out)
			snprintf(iface_out, iface_len, "%s", p->ifa_name);
		rc = 0;
		break;
	}
	freeifaddrs(ifa);
	return rc;
}

/*
 * The host part of a listen address "1.2.3.4:8180", "[::]:8180",
 * "*:8180" into host (brackets removed).  Returns 0, -1 if malformed.
 */
static int listen_host(const char *l, char *host, size_t len)
{
	const char *colon = strrchr(l, ':');
	size_t n;

	if (!colon)
		return -1;
	n = (size_t)(colon - l);
	if (n >= 2 && l[0] == '[' && l[n - 1] == ']') {
		l++;
		n -= 2;
	}
	if (n >= len)
		return -1;
	memcpy(host, l, n);
	host[n] = '\0';
	return 0;
}

/* Parse "FIRST,LAST[,NETMASK]" into p; 0 or CTL_EUSAGE. */
static int parse_range(const char *s, struct pxe_plan *p)
{
	char buf[64], *f[4] = { NULL };
	int n = 0;

	if (strlen(s) >= sizeof(buf))
		return usage_error("--range wants FIRST,LAST[,NETMASK], not '%s'", s);
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = buf, *comma; tok && n < 4; tok = comma) {
		comma = strchr(tok, ',');
		if (comma)
			*comma++ = '\0';
		f[n++] = tok;
	}
	if (n < 2 || n > 3)
		return usage_error("--range wants FIRST,LAST[,NETMASK], not '%s'", s);
	if (inet_pton(AF_INET, f[0], &p->first) != 1 || inet_pton(AF_INET, f[1], &p->last) != 1)
		return usage_error("--range: FIRST and LAST must be IPv4 addresses, not '%s'", s);
	if (ntohl(p->first.s_addr) > ntohl(p->last.s_addr))
		return usage_error("--range: FIRST comes after LAST in '%s'", s);
	if (n == 3 && (inet_pton(AF_INET, f[2], &p->rmask) != 1 || !mask_valid(p->rmask)))
		return usage_error("--range: '%s' is not a netmask like 255.255.255.0", f[2]);
	return 0;
}

/*
 * Fill p->port, p->iscsi_port, p->version from the daemon's status, and
 * the server address when neither --server nor --interface chose one.
 * Returns 0 or an exit code (message printed).
 */
static int from_status(const struct ctl *c, struct pxe_plan *p, bool have_server)
{
	char host[64], buf[128];
	const char *l;
	json_t *st, *boot;
	json_int_t port;
	int rc;

	rc = ctl_call(c, "GET", "/v1/status", NULL, NULL, &st);
	if (rc)
		return rc;
	log_safe(ctl_str(st, "version", "?"), p->version, sizeof(p->version));
	p->iscsi_port = (int)ctl_int(st, "iscsi_port");
	boot = json_object_get(st, "boot");
	if (!boot) {
		fprintf(stderr, "pristinectl: pristined does not report a boot endpoint "
			"(is it older than pristinectl?)\n");
		rc = CTL_EREMOTE;
		goto out;
	}
	if (json_is_null(boot)) {
		fprintf(stderr, "pristinectl: pristined's boot endpoint is off, so there is nothing "
			"for iPXE to chain to.\n"
			"  Turn it on with 'boot-listen = ADDR:PORT' in [server] of pristine.conf\n"
			"  (or pristined --boot-listen ADDR:PORT), restart pristined, and run this again.\n");
		rc = CTL_EREMOTE;
		goto out;
	}
	port = json_integer_value(json_object_get(boot, "port"));
	if (port < 1 || port > 65535) {
		fprintf(stderr, "pristinectl: pristined reports no valid boot port\n");
		rc = CTL_EREMOTE;
		goto out;
	}
	p->port = (int)port;
	l = json_string_value(json_array_get(json_object_get(boot, "listen"), 0));
	if (!l || listen_host(l, host, sizeof(host)))
		host[0] = '\0';
	if (!have_server) {
		struct in_addr a;

		if (inet_pton(AF_INET, host, &a) != 1 || a.s_addr == htonl(INADDR_ANY) ||
		    (ntohl(a.s_addr) >> 24) == 127) {
			fprintf(stderr, "pristinectl: cannot tell which address the PCs reach this "
				"server at: the boot endpoint listens on %s.\n"
				"  Give --server IP (this server's address on the lab network) or "
				"--interface IF.\n", log_safe(l ? l : "?", buf, sizeof(buf)));
			rc = CTL_EUSAGE;
			goto out;
		}
		p->server = a;
	} else if (host[0] && strcmp(host, "0.0.0.0") && strcmp(host, "*") &&
		   strcmp(host, "::")) {
		char srv[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &p->server, srv, sizeof(srv));
		if (strcmp(host, srv))
			fprintf(stderr, "pristinectl: warning: the boot endpoint listens on %s only, "
				"but the configuration sends PCs to %s\n",
				log_safe(l, buf, sizeof(buf)), srv);
	}
	rc = 0;
out:
	json_decref(st);
	return rc;
}

static void print_header(const struct pxe_plan *p, const char *srv, const char *url)
{
	printf("# dnsmasq configuration for pristine: network boot of diskless PCs.\n"
	       "# Generated by `pristinectl pxe dnsmasq %s` (pristined %s).\n"
	       "#\n"
	       "#   boot endpoint  %s\n",
	       p->full ? "--full" : "--proxy", p->version, url);
	if (p->iscsi_port > 0)
		printf("#   iSCSI          %s:%d (named by the boot script, not here)\n", srv,
		       p->iscsi_port);
	printf("#   TFTP           %s on %s: %s (BIOS), %s (UEFI x86-64)\n"
	       "#\n"
	       "# Needs the Debian packages dnsmasq and ipxe.  Save as\n"
	       "# /etc/dnsmasq.d/pristine.conf and restart dnsmasq.  It is meant for a\n"
	       "# dnsmasq that does nothing else: port=0 below turns its DNS off.\n"
	       "#\n"
	       "# The chain: the PC's firmware asks DHCP, loads iPXE by TFTP from here;\n"
	       "# iPXE asks DHCP again, now recognisably iPXE, and is handed the boot\n"
	       "# endpoint's URL instead of the binary (or it would load itself in a\n"
	       "# loop); pristined answers that PC's own script, which sanboots its image.\n"
	       "\n"
	       "# No DNS server, DHCP and TFTP only.\n"
	       "port=0\n",
	       IPXE_DIR, srv, IPXE_BIOS, IPXE_UEFI);
	if (p->iface[0])
		printf("\n# Answer on the lab's interface only.\n"
		       "interface=%s\n", p->iface);
	else
		printf("\n# Answer on every interface; add interface=NAME to limit this.\n");
}

static void print_range(const struct pxe_plan *p, const char *srv)
{
	char first[INET_ADDRSTRLEN], last[INET_ADDRSTRLEN], mask[INET_ADDRSTRLEN];
	char net[INET_ADDRSTRLEN];

	if (!p->full) {
		struct in_addr n = p->server;

		if (p->mask.s_addr)
			n.s_addr &= p->mask.s_addr;
		inet_ntop(AF_INET, &n, net, sizeof(net));
		printf("\n# Proxy DHCP: the site's DHCP server keeps giving out addresses;\n"
		       "# dnsmasq only adds the boot information to its answers (the network\n"
		       "# is the one %s is on).\n"
		       "dhcp-range=%s,proxy\n", srv, net);
		return;
	}
	inet_ntop(AF_INET, &p->first, first, sizeof(first));
	inet_ntop(AF_INET, &p->last, last, sizeof(last));
	printf("\n# Full DHCP: dnsmasq is the network's DHCP server and leases these\n"
	       "# addresses for 12 hours.  There must be no other DHCP server here.\n");
	if (p->rmask.s_addr) {
		inet_ntop(AF_INET, &p->rmask, mask, sizeof(mask));
		printf("dhcp-range=%s,%s,%s,12h\n", first, last, mask);
	} else {
		printf("dhcp-range=%s,%s,12h\n", first, last);
	}
	printf("# dnsmasq names its own host as the PCs' router; if another box is\n"
	       "# the gateway, or the PCs need a DNS server, say so:\n"
	       "#dhcp-option=option:router,GATEWAY-IP\n"
	       "#dhcp-option=option:dns-server,DNS-IP\n");
}

/* Write the whole configuration to stdout. */
static void print_conf(const struct pxe_plan *p)
{
	char srv[INET_ADDRSTRLEN], url[96];

	inet_ntop(AF_INET, &p->server, srv, sizeof(srv));
	snprintf(url, sizeof(url), "http://%s:%d/boot.ipxe", srv, p->port);
	print_header(p, srv, url);
	print_range(p, srv);
	fputs("\n# Which requests come from iPXE: it sends the user class \"iPXE\" and\n"
	      "# its own option 175.  Either one sets the tag ipxe.\n"
	      "dhcp-userclass=set:ipxe,iPXE\n"
	      "dhcp-match=set:ipxe,175\n"
	      "# UEFI x86-64 firmware gives client architecture 7 or 9 (RFC 4578).\n"
	      "dhcp-match=set:efi64,option:client-arch,7\n"
	      "dhcp-match=set:efi64,option:client-arch,9\n"
	      "\n"
	      "# iPXE is running: hand it the boot endpoint, never the binary again.\n",
	      stdout);
	if (p->full)
		printf("dhcp-boot=tag:ipxe,%s\n", url);
	else
		printf("# The address after the empty server name is the answer's next-server\n"
		       "# (siaddr): iPXE takes a proxy offer's file name only when siaddr is\n"
		       "# set too, and dnsmasq sets it in proxy answers only from here.\n"
		       "dhcp-boot=tag:ipxe,%s,,%s\n", url, srv);
	if (p->full)
		printf("\n# The firmware's own PXE: load iPXE by TFTP, for BIOS or UEFI.\n"
		       "dhcp-boot=tag:!ipxe,tag:!efi64,%s\n"
		       "dhcp-boot=tag:!ipxe,tag:efi64,%s\n",
		       IPXE_BIOS, IPXE_UEFI);
	else
		printf("\n# The firmware's own PXE: a one-entry boot menu per architecture that\n"
		       "# loads iPXE by TFTP from this server (no prompt: it boots at once).\n"
		       "# iPXE itself matches none of these, so it takes the URL above.\n"
		       "pxe-service=tag:!ipxe,x86PC,\"pristine network boot\",%s\n"
		       "pxe-service=tag:!ipxe,x86-64_EFI,\"pristine network boot\",%s\n"
		       "pxe-service=tag:!ipxe,BC_EFI,\"pristine network boot\",%s\n",
		       IPXE_BIOS, IPXE_UEFI, IPXE_UEFI);
	printf("\n# TFTP: Debian's iPXE binaries, read-only, from the package's directory.\n"
	       "enable-tftp\n"
	       "tftp-root=%s\n", IPXE_DIR);
}

/* pxe dnsmasq [--proxy | --full] [--server IP] [--interface IF] [--range ...] */
static int verb_pxe_dnsmasq(const struct ctl *c, const struct ctl_opts *o)
{
	struct pxe_plan p;
	bool have_server = false;
	char buf[128];
	int rc;

	memset(&p, 0, sizeof(p));
	if (o->proxy && o->full)
		return usage_error("pxe dnsmasq takes --proxy or --full, not both");
	if (c->json)
		return usage_error("pxe dnsmasq prints a configuration file; --json does not apply");
	p.full = o->full;
	if (o->range && !p.full)
		return usage_error("--range is for --full (a proxy DHCP server gives no addresses)");
	if (p.full && !o->range)
		return usage_error("--full needs --range FIRST,LAST[,NETMASK]: the addresses "
				   "dnsmasq may lease");
	if (o->range && (rc = parse_range(o->range, &p)))
		return rc;
	if (o->interface) {
		if (!iface_valid(o->interface))
			return usage_error("--interface: '%s' is not an interface name",
					   log_safe(o->interface, buf, sizeof(buf)));
		snprintf(p.iface, sizeof(p.iface), "%s", o->interface);
	}
	if (o->server) {
		if (inet_pton(AF_INET, o->server, &p.server) != 1)
			return usage_error("--server wants this server's IPv4 address, not '%s'",
					   log_safe(o->server, buf, sizeof(buf)));
		have_server = true;
		/* The netmask, when the address is one of this host's. */
		if (if_lookup(NULL, &p.server, &p.mask, NULL, 0))
			p.mask.s_addr = 0;
	} else if (p.iface[0]) {
		if (if_lookup(p.iface, &p.server, &p.mask, NULL, 0))
			return usage_error("interface %s has no IPv4 address here (or does not "
					   "exist): give --server IP", p.iface);
		have_server = true;
	}
	rc = from_status(c, &p, have_server);
	if (rc)
		return rc;
	if (!have_server && if_lookup(NULL, &p.server, &p.mask, NULL, 0))
		p.mask.s_addr = 0;
	if (p.full && (p.rmask.s_addr || p.mask.s_addr) &&
	    ((p.first.s_addr ^ p.server.s_addr) & (p.rmask.s_addr ? p.rmask.s_addr : p.mask.s_addr)))
		fprintf(stderr, "pristinectl: warning: --range is not on the server's network\n");
	print_conf(&p);
	return fflush(stdout) ? CTL_EREMOTE : CTL_OK;
}

int do_pxe(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	int rc;

	if (!argc)
		return usage_error("pxe needs a verb: dnsmasq");
	if (!strcmp(argv[0], "dnsmasq") && argc == 1)
		return (rc = opts_only(o, "pxe dnsmasq", "PDSIR")) ? rc : verb_pxe_dnsmasq(c, o);
	if (!strcmp(argv[0], "dnsmasq"))
		return usage_error("pxe dnsmasq takes no arguments, only options");
	return usage_error("unknown pxe verb '%s' (there is: dnsmasq)",
			   argv[0]);
}
