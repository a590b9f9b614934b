/* HTTP: plain-HTTP requests (curl http://HOST[:8080]/...) go to the edge's HTTP service.
 *
 * Matches TCP connections to port 80 or 8080 (curl opens a SOCK_STREAM socket with protocol 0
 * or IPPROTO_TCP, then connects). HTTPS (443) is left alone: the certificate would not match.
 * `target[0]` is the edge to use; port 0 there keeps the port the program asked for.
 */
#include <freeoffload/policy.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, fo_u32);
    __type(value, struct fo_addr);
} target SEC(".maps");

FO_CONNECT_POLICY(http)
{
    fo_u32 zero = 0;
    struct fo_addr *to;
    struct fo_addr dst;

    if (ctx->sock_type != FO_SOCK_STREAM)
        return FO_PASS;
    if (ctx->protocol != 0 && ctx->protocol != FO_IPPROTO_TCP)
        return FO_PASS;
    if (ctx->dst_port != 80 && ctx->dst_port != 8080)
        return FO_PASS;
    to = bpf_map_lookup_elem(&target, &zero);
    if (!to || !to->family)
        return FO_PASS; /* no edge configured yet */
    fo_ctx_addr(ctx, &dst);
    dst.family = to->family;
    __builtin_memcpy(dst.ip, to->ip, 16);
    if (to->port)
        dst.port = to->port;
    fo_ctx_set_addr(ctx, &dst);
    return FO_REWRITE;
}
