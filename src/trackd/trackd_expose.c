#include "trackd_expose.h"

#include <errno.h>

int trackd_status_json(const struct trackd_view *v, double now, char **out, size_t *len)
{
	(void)v; (void)now; (void)out; (void)len;
	return -ENOMEM;
}

int trackd_metrics_text(const struct trackd_view *v, double now, char **out, size_t *len)
{
	(void)v; (void)now; (void)out; (void)len;
	return -ENOMEM;
}
