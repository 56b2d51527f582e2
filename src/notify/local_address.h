/* local_address: whether a numeric address is configured on this host. */
#ifndef PGTRACK_LOCAL_ADDRESS_H
#define PGTRACK_LOCAL_ADDRESS_H

/* 1 present, 0 absent, -errno (or -EINVAL for a non-numeric address). */
int local_address_present(const char *address);

#endif
