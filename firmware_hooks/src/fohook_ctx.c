/* Building a policy's fo_connect_ctx from a connect() call and turning a rewritten context
 * back into a socket address. */
#include "fohook_ctx.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t fohook_v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static uint32_t fohook_env_u32(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? (uint32_t)strtoul(v, NULL, 10) : 0;
}

void fohook_task_from_env(struct fohook_task *t)
{
    t->type = fohook_env_u32("FREEOFFLOAD_TASK_TYPE");
    t->flags = fohook_env_u32("FREEOFFLOAD_TASK_FLAGS");
    t->cpu_milli = fohook_env_u32("FREEOFFLOAD_TASK_CPU_MILLI");
    t->memory_mib = fohook_env_u32("FREEOFFLOAD_TASK_MEMORY_MIB");
    t->storage_mib = fohook_env_u32("FREEOFFLOAD_TASK_STORAGE_MIB");
}

/* The socket's type and protocol: one system call (SO_PROTOCOL) where the protocol of an
 * IPv4/IPv6 socket implies its type, a second (SO_TYPE) only where it does not (SCTP, raw). */
static void fohook_sock_kind(struct fo_connect_ctx *c, int fd)
{
    int v = 0;
    socklen_t vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl) != 0)
        return;
    c->protocol = (uint32_t)v;
    switch (v) {
    case IPPROTO_TCP:
    case IPPROTO_MPTCP:
        c->sock_type = SOCK_STREAM;
        return;
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        c->sock_type = SOCK_DGRAM;
        return;
    default:
        vl = sizeof v;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) == 0)
            c->sock_type = (uint32_t)v;
    }
}

int fohook_ctx_build(struct fo_connect_ctx *c, const struct fohook_task *t, uint32_t pid, int fd,
                     const struct sockaddr *addr, socklen_t len)
{
    memset(c, 0, sizeof *c);
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        c->family = FO_AF_INET;
        c->dst_ip4 = in->sin_addr.s_addr;
        c->dst_port = ntohs(in->sin_port);
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        c->family = FO_AF_INET6;
        memcpy(c->dst_ip6, &in6->sin6_addr, 16);
        c->dst_port = ntohs(in6->sin6_port);
        if (memcmp(c->dst_ip6, fohook_v4mapped_prefix, 12) == 0) {
            c->flags |= FO_CTX_V4MAPPED;
            memcpy(&c->dst_ip4, c->dst_ip6 + 12, 4);
        }
    } else {
        return -1;
    }
    if (fd >= 0)
        fohook_sock_kind(c, fd);
    c->pid = pid;
    c->task_type = t->type;
    c->task_flags = t->flags;
    c->demand_cpu_milli = t->cpu_milli;
    c->demand_memory_mib = t->memory_mib;
    c->demand_storage_mib = t->storage_mib;
    return 0;
}

static int fohook_to_inet(const struct fo_connect_ctx *c, struct sockaddr_storage *out,
                          socklen_t *outlen)
{
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)c->dst_port);
    if (c->family == FO_AF_INET)
        in->sin_addr.s_addr = c->dst_ip4;
    else if (memcmp(c->dst_ip6, fohook_v4mapped_prefix, 12) == 0)
        memcpy(&in->sin_addr.s_addr, c->dst_ip6 + 12, 4);
    else
        return -1; /* an IPv6 destination cannot be reached from an IPv4 socket */
    *outlen = sizeof *in;
    return 0;
}

static void fohook_to_inet6(const struct fo_connect_ctx *c, const struct sockaddr *orig,
                            struct sockaddr_storage *out, socklen_t *outlen)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    memcpy(in6, orig, sizeof *in6); /* keeps flow info and scope id */
    in6->sin6_port = htons((uint16_t)c->dst_port);
    if (c->family == FO_AF_INET) {
        memcpy(&in6->sin6_addr, fohook_v4mapped_prefix, 12);
        memcpy((uint8_t *)&in6->sin6_addr + 12, &c->dst_ip4, 4);
        in6->sin6_scope_id = 0;
    } else {
        memcpy(&in6->sin6_addr, c->dst_ip6, 16);
    }
    *outlen = sizeof *in6;
}

int fohook_ctx_apply(const struct fo_connect_ctx *c, const struct sockaddr *orig,
                     struct sockaddr_storage *out, socklen_t *outlen)
{
    memset(out, 0, sizeof *out);
    if (c->dst_port > 65535 || (c->family != FO_AF_INET && c->family != FO_AF_INET6))
        return -1;
    if (orig->sa_family == AF_INET)
        return fohook_to_inet(c, out, outlen);
    fohook_to_inet6(c, orig, out, outlen);
    return 0;
}
