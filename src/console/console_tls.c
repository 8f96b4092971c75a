/*
 * console_tls.c - the console's certificate: the admin's own
 * (console-cert, console-key), or a self-signed one made with GnuTLS at
 * first start and kept in STATE/console/ (0600) so that a browser that
 * accepted it once keeps accepting it.  Its SHA-256 fingerprint is what
 * an admin compares with the browser's warning (logged at start).
 */
#include "console/console.h"
#include "console/console_int.h"
#include "util/atomicfile.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PEM_MAX (1024 * 1024)    /* a certificate chain or key file */
#define CERT_YEARS 10

/* Read a whole small file into a malloc'd NUL-terminated buffer. */
static int read_pem(const char *path, char **out, char *msg, size_t msglen)
{
	struct stat st;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PEM_MAX) {
		snprintf(msg, msglen, "%s: not a PEM file of at most %d bytes", path, PEM_MAX);
		rc = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		snprintf(msg, msglen, "%s: short read", path);
		rc = -EIO;
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
out:
	close(fd);
	return rc;
}

/* Check that cert (first of a chain) and key belong together; fill fpr. */
static int check_pair(const char *cert, const char *key, const char *what, char *fpr,
		      size_t fprlen, char *msg, size_t msglen)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t pk = NULL;
	gnutls_datum_t dc = { (unsigned char *)cert, (unsigned)strlen(cert) };
	gnutls_datum_t dk = { (unsigned char *)key, (unsigned)strlen(key) };
	unsigned char id1[64], id2[64], f[32];
	size_t l1 = sizeof(id1), l2 = sizeof(id2), fl = sizeof(f);
	int rc = -EINVAL, g;

	if ((g = gnutls_x509_crt_init(&crt)) || (g = gnutls_x509_crt_import(crt, &dc, GNUTLS_X509_FMT_PEM))) {
		snprintf(msg, msglen, "%s: not a PEM certificate: %s", what, gnutls_strerror(g));
		goto out;
	}
	if ((g = gnutls_x509_privkey_init(&pk)) ||
	    (g = gnutls_x509_privkey_import2(pk, &dk, GNUTLS_X509_FMT_PEM, NULL, 0))) {
		snprintf(msg, msglen, "%s: not a PEM private key (unencrypted): %s", what,
			 gnutls_strerror(g));
		goto out;
	}
	if (gnutls_x509_crt_get_key_id(crt, 0, id1, &l1) ||
	    gnutls_x509_privkey_get_key_id(pk, 0, id2, &l2) || l1 != l2 || memcmp(id1, id2, l1)) {
		snprintf(msg, msglen, "%s: the key is not the certificate's", what);
		goto out;
	}
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, f, &fl)) {
		snprintf(msg, msglen, "%s: cannot compute the fingerprint", what);
		goto out;
	}
	fpr[0] = '\0';
	for (size_t i = 0; i < fl && 3 * i + 3 <= fprlen; i++)
		snprintf(fpr + 3 * i, fprlen - 3 * i, "%02X%s", f[i], i + 1 < fl ? ":" : "");
	if (gnutls_x509_crt_get_expiration_time(crt) < time(NULL))
		log_warn("console: %s: the certificate has expired; browsers will refuse it", what);
	rc = 0;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (pk)
		gnutls_x509_privkey_deinit(pk);
	return rc;
}

/* The listen address of "ADDR:PORT" / "[V6]:PORT" as binary, for the
 * subjectAltName; 0 bytes for a wildcard or a name. */
static size_t listen_ip(const char *listen, unsigned char *ip)
{
	char host[80];
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);

	if (n >= sizeof(host))
		return 0;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	if (inet_pton(AF_INET, host, ip) == 1)
		return strcmp(host, "0.0.0.0") ? 4 : 0;
	if (inet_pton(AF_INET6, host, ip) == 1) {
		static const unsigned char any[16];
		return memcmp(ip, any, 16) ? 16 : 0;
	}
	return 0;
}

/* Make a self-signed certificate and its key as PEM text (malloc'd). */
static int make_self_signed(const char *listen, char **cert, char **key, char *msg, size_t msglen)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t pk = NULL;
	gnutls_datum_t dc = { NULL, 0 }, dk = { NULL, 0 };
	unsigned char serial[16], ip[16];
	char host[256] = "pristine";
	size_t iplen;
	time_t now = time(NULL);
	int g, rc = -EIO;

	if (gethostname(host, sizeof(host) - 1) || !host[0])
		snprintf(host, sizeof(host), "pristine");
	host[sizeof(host) - 1] = '\0';
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f;   /* a positive serial number */
	serial[0] |= 0x01;
	if ((g = gnutls_x509_privkey_init(&pk)) ||
	    (g = gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
					      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) ||
	    (g = gnutls_x509_crt_init(&crt)) ||
	    (g = gnutls_x509_crt_set_version(crt, 3)) ||
	    (g = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) ||
	    (g = gnutls_x509_crt_set_activation_time(crt, now - 86400)) ||
	    (g = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)CERT_YEARS * 365 * 86400)) ||
	    (g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host,
					       (unsigned)strlen(host))) ||
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
						      (unsigned)strlen(host), GNUTLS_FSAN_APPEND)) ||
	    (g = gnutls_x509_crt_set_key(crt, pk)) ||
	    (g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) ||
	    (g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) ||
	    (g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)))
		goto fail;
	if ((iplen = listen_ip(listen, ip)) &&
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, (unsigned)iplen,
						      GNUTLS_FSAN_APPEND)))
		goto fail;
	{
		unsigned char kid[64];
		size_t kl = sizeof(kid);
		if (gnutls_x509_crt_get_key_id(crt, 0, kid, &kl) == 0)
			gnutls_x509_crt_set_subject_key_id(crt, kid, kl);
	}
	if ((g = gnutls_x509_crt_sign2(crt, crt, pk, GNUTLS_DIG_SHA256, 0)) ||
	    (g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &dc)) ||
	    (g = gnutls_x509_privkey_export2(pk, GNUTLS_X509_FMT_PEM, &dk)))
		goto fail;
	*cert = strndup((const char *)dc.data, dc.size);
	*key = strndup((const char *)dk.data, dk.size);
	if (!*cert || !*key) {
		free(*cert);
		free(*key);
		*cert = *key = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = 0;
	goto out;
fail:
	snprintf(msg, msglen, "cannot make a self-signed certificate: %s", gnutls_strerror(g));
out:
	if (dk.data) {
		memset(dk.data, 0, dk.size);
		gnutls_free(dk.data);
	}
	gnutls_free(dc.data);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (pk)
		gnutls_x509_privkey_deinit(pk);
	return rc;
}

/* Wipe a PEM key (NUL-terminated, malloc'd) and free it; NULL is a no-op. */
static void free_key(char *key)
{
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
}

int console_tls_load(const struct console_opts *o, char **cert, char **key, char *fpr,
		     size_t fprlen, char *msg, size_t msglen)
{
	char dir[PATH_MAX], cpath[PATH_MAX + 16], kpath[PATH_MAX + 16];
	const char *what = "console-cert";
	int rc;

	*cert = *key = NULL;
	if (o->cert && o->cert[0]) {
		if ((rc = read_pem(o->cert, cert, msg, msglen)) ||
		    (rc = read_pem(o->key, key, msg, msglen)))
			goto fail;
		what = o->cert;
	} else {
		if (snprintf(dir, sizeof(dir), "%s/" CONSOLE_DIR, o->state) >= (int)sizeof(dir)) {
			snprintf(msg, msglen, "state directory path too long");
			return -ENAMETOOLONG;
		}
		snprintf(cpath, sizeof(cpath), "%s/cert.pem", dir);
		snprintf(kpath, sizeof(kpath), "%s/key.pem", dir);
		if (access(cpath, F_OK) == 0 || access(kpath, F_OK) == 0) {
			/* Made before: reuse it (a broken pair is an error, not
			 * silently replaced: browsers pinned the old one). */
			if ((rc = read_pem(cpath, cert, msg, msglen)) ||
			    (rc = read_pem(kpath, key, msg, msglen)))
				goto fail;
			what = cpath;
		} else {
			if (mkdir(dir, 0700) && errno != EEXIST) {
				rc = -errno;
				snprintf(msg, msglen, "%s: %s", dir, strerror(errno));
				return rc;
			}
			if ((rc = make_self_signed(o->listen, cert, key, msg, msglen)))
				goto fail;
			if ((rc = atomicfile_write(dir, "key.pem", *key, strlen(*key), 0600)) ||
			    (rc = atomicfile_write(dir, "cert.pem", *cert, strlen(*cert), 0600))) {
				snprintf(msg, msglen, "%s: cannot write the certificate: %s", dir,
					 strerror(-rc));
				goto fail;
			}
			log_notice("console: made a self-signed certificate in %s (cert.pem, key.pem)",
				   dir);
			what = cpath;
		}
	}
	if ((rc = check_pair(*cert, *key, what, fpr, fprlen, msg, msglen)))
		goto fail;
	return 0;
fail:
	free(*cert);
	free_key(*key);
	*cert = *key = NULL;
	return rc;
}
