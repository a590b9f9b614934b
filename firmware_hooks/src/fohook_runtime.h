/* The connect() runtime: policy state, store reading and the hooked call (not installed). */
#ifndef FOHOOK_RUNTIME_H
#define FOHOOK_RUNTIME_H

#include <sys/socket.h>

#include "fohook_internal.h"

/* Find the real connect(), read the task attributes and the store's location. 0 on success. */
FOHOOK_HIDDEN int fohook_runtime_init(void);
/* The hooked connect(): runs the installed policy, then the real connect(). */
FOHOOK_HIDDEN int fohook_runtime_connect(int fd, const struct sockaddr *addr, socklen_t len);

#endif
