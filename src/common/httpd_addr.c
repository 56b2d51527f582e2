/*
 * httpd_addr: httpd's listen addresses and client networks (httpd.h),
 * numeric only: nothing here resolves a name.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	return (int)v;
}

int httpd_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hlen;
	int port;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(text, ':');
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - text);
	port = parse_port(colon + 1);
	if (hlen == 0 || hlen >= sizeof(host) || port < 0)
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (hlen < 3 || host[hlen - 1] != ']')
			return -EINVAL;
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	return 0;
}

/* Whether the bits of addr after the first `bits` are all zero. */
static bool host_bits_clear(const uint8_t *addr, unsigned int bits, size_t size)
{
	for (size_t i = bits / 8; i < size; i++) {
		unsigned int keep = i == bits / 8 ? bits % 8 : 0;
		uint8_t mask = (uint8_t)(0xffu >> keep);

		if (addr[i] & mask)
			return false;
	}
	return true;
}

int httpd_parse_net(const char *text, struct httpd_net *net)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	size_t size;
	long bits;

	memset(net, 0, sizeof(*net));
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, host, net->addr) == 1)
		net->family = AF_INET6;
	else
		return -EINVAL;
	size = net->family == AF_INET ? 4 : 16;
	bits = (long)size * 8;
	if (slash) {
		char *end;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || *end || bits > (long)size * 8)
			return -EINVAL;
	}
	net->bits = (unsigned int)bits;
	/* "10.1.2.3/8" is more likely a typo than a network. */
	if (!host_bits_clear(net->addr, net->bits, size))
		return -EINVAL;
	return 0;
}

bool httpd_net_contains(const struct httpd_net *net, const struct sockaddr *sa)
{
	const uint8_t *a;
	unsigned int full = net->bits / 8, rest = net->bits % 8;

	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		a = a6->s6_addr;
		/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d. */
		if (net->family == AF_INET && IN6_IS_ADDR_V4MAPPED(a6))
			a += 12;
		else if (net->family != AF_INET6)
			return false;
	} else {
		return false;
	}
	if (sa->sa_family == AF_INET && net->family != AF_INET)
		return false;
	if (memcmp(a, net->addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((a[full] & mask) != (net->addr[full] & mask))
			return false;
	}
	return true;
}
