/*
 * ctl_http.c - pristinectl's HTTP client: libcurl over the daemon's Unix
 * socket (CURLOPT_UNIX_SOCKET_PATH).  The host name in the URL is only a
 * placeholder; the socket decides where the request goes.
 */
#include "ctl/ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Replies larger than this are not from a sane daemon. */
#define CTL_REPLY_MAX (16u << 20)

struct sink {
	char *buf;
	size_t len;
	int overflow;
};

int ctl_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void ctl_http_cleanup(void)
{
	curl_global_cleanup();
}

/* curl write callback: append to the sink, refusing past CTL_REPLY_MAX. */
static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	char *nb;

	if (n > CTL_REPLY_MAX - s->len) {
		s->overflow = 1;
		return 0;
	}
	nb = realloc(s->buf, s->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + s->len, data, n);
	s->len += n;
	nb[s->len] = '\0';
	s->buf = nb;
	return n;
}

/*
 * Explain on stderr why sock cannot be reached, from what the file
 * system says about it and curl's error.
 */
static void explain_unreachable(const char *sock, const char *curlerr)
{
	struct stat st;

	if (stat(sock, &st) < 0 && errno == ENOENT)
		fprintf(stderr, "pristinectl: cannot reach pristined: no socket at %s\n"
			"  (pristined may not be running; --state DIR or --socket PATH "
			"select another daemon)\n", sock);
	else if (stat(sock, &st) == 0 && !S_ISSOCK(st.st_mode))
		fprintf(stderr, "pristinectl: cannot reach pristined: %s is not a socket\n", sock);
	else if (access(sock, R_OK | W_OK) < 0 && errno == EACCES)
		fprintf(stderr, "pristinectl: cannot reach pristined: permission denied on %s\n"
			"  (the admin socket is root-only: run pristinectl as root)\n", sock);
	else
		fprintf(stderr, "pristinectl: cannot reach pristined at %s: %s\n"
			"  (pristined may not be running)\n", sock, curlerr);
}

int ctl_request(const char *sock, const char *method, const char *path, const char *body,
		struct ctl_reply *r)
{
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct sink s = { 0 };
	CURL *h = NULL;
	CURLcode cc;
	int rc = CTL_EUNREACH;

	memset(r, 0, sizeof(*r));
	h = curl_easy_init();
	if (!h) {
		fprintf(stderr, "pristinectl: cannot initialise libcurl\n");
		goto out;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");	/* no 100-continue round trip */
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "pristinectl");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_COULDNT_CONNECT) {
		explain_unreachable(sock, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (cc != CURLE_OK) {
		fprintf(stderr, "pristinectl: talking to pristined at %s: %s\n", sock,
			s.overflow ? "reply too large" : errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (s.len)
		r->body = json_loadb(s.buf, s.len, 0, NULL);
	rc = 0;
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	free(s.buf);
	return rc;
}

char *ctl_path_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* RFC 3986 unreserved characters, plus ':' which IQNs are full of. */
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~:", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}
