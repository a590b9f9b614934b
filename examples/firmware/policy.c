/*
 * The example firmware's policy: runs at the fixed hook points of firmware.c.
 *
 * - send_reading(sensor, value, link), hooked with FO_HOOK_POINT: readings of the sensor the
 *   `config` map names are dropped, values above its limit are clamped, and readings meant for
 *   link `from_link` are offloaded to `to_link` (e.g. the edge node instead of the cloud).
 * - the functions of the Makefile's HOOK_FUNCTIONS list (hook points placed by hookgen.py, with
 *   the call's arguments): calls counted per function in `calls`;
 *   sample_sensor(sensor): a faulty sensor is read through its spare instead (argument rewrite);
 *   radio_tx(link, unit, sensor, value): values below `min_value` are not sent (FOHOOK_DROP,
 *   radio_tx returns FW_E_TOO_SMALL), and the unit string `unit_from` is swapped for `unit_to`
 *   (a pointer argument, compared and rewritten; the firmware registers both addresses).
 */
#include <fohook_fixed.h>

#define FW_E_TOO_SMALL (-11) /* what a refused radio_tx returns */

struct fw_config {
    fo_u32 drop_sensor;   /* readings of this sensor are dropped */
    fo_u32 max_value;     /* values above are clamped to it */
    fo_u32 from_link;     /* readings for this link ... */
    fo_u32 to_link;       /* ... go to this one */
    fo_u32 faulty_sensor; /* sample_sensor(faulty_sensor) ... */
    fo_u32 spare_sensor;  /* ... reads this one */
    fo_u32 min_value;     /* radio_tx of a smaller value is refused */
    fo_u32 reserved;
    fo_u64 unit_from;     /* radio_tx's unit pointer: this one ... */
    fo_u64 unit_to;       /* ... is replaced by this one */
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

static __attribute__((always_inline)) int count_call(fo_u32 hook)
{
    fo_u64 one = 1, *n = bpf_map_lookup_elem(&calls, &hook);

    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&calls, &hook, &one, BPF_NOEXIST);
    return 0;
}

/* The listed functions: their arguments as the call made them. */
static __attribute__((always_inline)) int listed_function(struct fohook_ctx *ctx,
                                                           struct fw_config *cfg)
{
    if (ctx->hook == fohook_id("sample_sensor") && ctx->nargs == 1) {
        if (ctx->args[0] == cfg->faulty_sensor)
            ctx->args[0] = cfg->spare_sensor;
    } else if (ctx->hook == fohook_id("radio_tx") && ctx->nargs == 4) {
        if (ctx->args[3] < cfg->min_value) {
            ctx->ret = (fo_u64)(long long)FW_E_TOO_SMALL;
            return FOHOOK_DROP;
        }
        if (cfg->unit_from != 0 && ctx->args[1] == cfg->unit_from)
            ctx->args[1] = cfg->unit_to;
    }
    return FOHOOK_CONTINUE;
}

SEC("fohook") int firmware_policy(struct fohook_ctx *ctx)
{
    fo_u32 zero = 0;
    struct fw_config *cfg = bpf_map_lookup_elem(&config, &zero);

    if (ctx->source == FOHOOK_SRC_INSTRUMENT) {
        count_call(ctx->hook);
        return cfg ? listed_function(ctx, cfg) : FOHOOK_CONTINUE;
    }
    if (ctx->hook != fohook_id("send_reading") || ctx->nargs < 3 || !cfg)
        return FOHOOK_CONTINUE;
    if (ctx->args[0] == cfg->drop_sensor)
        return FOHOOK_DROP;
    if (ctx->args[1] > cfg->max_value)
        ctx->args[1] = cfg->max_value;
    if (ctx->args[2] == cfg->from_link)
        ctx->args[2] = cfg->to_link;
    return FOHOOK_CONTINUE;
}
