/*
 * The example firmware's policy: runs at the fixed hook points of firmware.c.
 *
 * - send_reading(sensor, value, link), hooked with FO_HOOK_POINT: readings of the sensor the
 *   `config` map names are dropped, values above its limit are clamped, and readings meant for
 *   link `from_link` are offloaded to `to_link` (e.g. the edge node instead of the cloud).
 * - every function of the instrumented name list: calls counted per function in `calls`.
 */
#include <fohook_fixed.h>

struct fw_config {
    fo_u32 drop_sensor; /* readings of this sensor are dropped */
    fo_u32 max_value;   /* values above are clamped to it */
    fo_u32 from_link;   /* readings for this link ... */
    fo_u32 to_link;     /* ... go to this one */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, fo_u32);
    __type(value, struct fw_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, fo_u32);
    __type(value, fo_u64);
} calls SEC(".maps");

SEC("fohook") int firmware_policy(struct fohook_ctx *ctx)
{
    fo_u32 zero = 0;
    struct fw_config *cfg;

    if (ctx->source == FOHOOK_SRC_INSTRUMENT) {
        fo_u32 key = ctx->hook;
        fo_u64 one = 1, *n = bpf_map_lookup_elem(&calls, &key);
        if (n)
            __sync_fetch_and_add(n, 1);
        else
            bpf_map_update_elem(&calls, &key, &one, BPF_NOEXIST);
        return FOHOOK_CONTINUE;
    }
    if (ctx->hook != fohook_id("send_reading") || ctx->nargs < 3)
        return FOHOOK_CONTINUE;
    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg)
        return FOHOOK_CONTINUE;
    if (ctx->args[0] == cfg->drop_sensor)
        return FOHOOK_DROP;
    if (ctx->args[1] > cfg->max_value)
        ctx->args[1] = cfg->max_value;
    if (ctx->args[2] == cfg->from_link)
        ctx->args[2] = cfg->to_link;
    return FOHOOK_CONTINUE;
}
