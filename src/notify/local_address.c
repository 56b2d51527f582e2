#include "local_address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int local_address_present(const char *address)
{
	struct in_addr v4;
	struct in6_addr v6;
	struct ifaddrs *list, *i;
	int family, found = 0;

	if (inet_pton(AF_INET, address, &v4) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, address, &v6) == 1)
		family = AF_INET6;
	else
		return -EINVAL;
	if (getifaddrs(&list) < 0)
		return -errno;
	for (i = list; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET)
			found = memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, &v4,
				       sizeof(v4)) == 0;
		else
			found = memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, &v6,
				       sizeof(v6)) == 0;
	}
	freeifaddrs(list);
	return found;
}
