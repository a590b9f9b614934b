/* The policy context of one connect() call (not installed). */
#ifndef FOHOOK_CTX_H
#define FOHOOK_CTX_H

#include <stdint.h>
#include <sys/socket.h>

#include "fohook_internal.h"
#include "freeoffload/policy.h"

/* The task attributes `freeoffload run --task` put in the environment. */
struct fohook_task {
    uint32_t type, flags, cpu_milli, memory_mib, storage_mib;
};

FOHOOK_HIDDEN void fohook_task_from_env(struct fohook_task *t);
/* Fill `c` for a connect() to `addr`; -1 when the address is not IPv4 or IPv6 (no policy).
 * fd -1: leave sock_type and protocol 0 (the policy does not read them; no system call). */
FOHOOK_HIDDEN int fohook_ctx_build(struct fo_connect_ctx *c, const struct fohook_task *t,
                                   uint32_t pid, int fd, const struct sockaddr *addr,
                                   socklen_t len);
/* The address to connect to after a rewrite, in the family of the socket (that of `orig`):
 * an IPv4 destination on an IPv6 socket becomes ::ffff:a.b.c.d. -1 when the rewritten
 * destination is invalid or cannot be reached from this socket. */
FOHOOK_HIDDEN int fohook_ctx_apply(const struct fo_connect_ctx *c, const struct sockaddr *orig,
                                   struct sockaddr_storage *out, socklen_t *outlen);

#endif
