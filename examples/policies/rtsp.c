/* RTSP: camera and player control connections (port 554, or 8554) go to an edge media server.
 *
 * Only the RTSP control connection passes through connect(); the RTP/RTCP media ports are
 * negotiated inside it (SETUP), so redirecting it moves the whole stream. Urgent tasks (live
 * video) go to `servers[0]`, everything else to `servers[1]`; an empty row passes.
 */
#include <freeoffload/policy.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, fo_u32);
    __type(value, struct fo_addr);
} servers SEC(".maps");

FO_CONNECT_POLICY(rtsp)
{
    fo_u32 slot = (ctx->task_flags & FO_TASK_URGENT) ? 0 : 1;
    struct fo_addr *server;

    if (ctx->sock_type != FO_SOCK_STREAM)
        return FO_PASS;
    if (ctx->dst_port != 554 && ctx->dst_port != 8554)
        return FO_PASS;
    server = bpf_map_lookup_elem(&servers, &slot);
    if (!server || !server->family)
        return FO_PASS;
    fo_ctx_set_addr(ctx, server);
    return FO_REWRITE;
}
