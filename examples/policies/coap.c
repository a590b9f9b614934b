/* CoAP: requests over connected UDP sockets to port 5683 go to the edge's CoAP server.
 *
 * A CoAP client that calls connect() on its UDP socket (libcoap, aiocoap with a fixed peer)
 * sends every datagram to the connected address, so rewriting it moves the exchange. Multicast
 * discovery (224.0.1.187, ff0x::fd) and CoAP over DTLS (5684) are left alone.
 */
#include <freeoffload/policy.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, fo_u32);
    __type(value, struct fo_addr);
} target SEC(".maps");

FO_CONNECT_POLICY(coap)
{
    fo_u32 zero = 0;
    struct fo_addr dst;
    struct fo_addr *to;

    if (ctx->sock_type != FO_SOCK_DGRAM || ctx->dst_port != 5683)
        return FO_PASS;
    if (ctx->protocol != 0 && ctx->protocol != FO_IPPROTO_UDP)
        return FO_PASS;
    fo_ctx_addr(ctx, &dst);
    if (dst.family == FO_AF_INET && (dst.ip[0] & 0xf0) == 224)
        return FO_PASS; /* IPv4 multicast */
    if (dst.family == FO_AF_INET6 && dst.ip[0] == 0xff)
        return FO_PASS; /* IPv6 multicast */
    to = bpf_map_lookup_elem(&target, &zero);
    if (!to || !to->family)
        return FO_PASS;
    fo_ctx_set_addr(ctx, to);
    return FO_REWRITE;
}
