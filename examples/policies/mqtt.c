/* MQTT: clients of a broker on port 1883 (mosquitto_pub/_sub) go to the edge brokers.
 *
 * `brokers` holds up to 8 broker addresses (rows with family 0 are unused). Each process
 * sticks to one broker (chosen by pid), so a client's session stays on one broker while
 * clients spread over all of them. MQTT over TLS (8883) is left alone.
 */
#include <freeoffload/policy.h>

#define MAX_BROKERS 8

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_BROKERS);
    __type(key, fo_u32);
    __type(value, struct fo_addr);
} brokers SEC(".maps");

FO_CONNECT_POLICY(mqtt)
{
    fo_u32 count = 0, pick;
    struct fo_addr *broker;

    if (ctx->sock_type != FO_SOCK_STREAM || ctx->dst_port != 1883)
        return FO_PASS;
    for (fo_u32 i = 0; i < MAX_BROKERS; i++) {
        fo_u32 key = i;
        broker = bpf_map_lookup_elem(&brokers, &key);
        if (!broker || !broker->family)
            break;
        count++;
    }
    if (count == 0)
        return FO_PASS;
    pick = ctx->pid % count;
    broker = bpf_map_lookup_elem(&brokers, &pick);
    if (!broker)
        return FO_PASS;
    fo_ctx_set_addr(ctx, broker);
    return FO_REWRITE;
}
