/*
 * A firmware-style sensor loop with fixed hook points (see firmware_hooks/include/fohook_fixed.h).
 *
 * send_reading() carries a hand-placed FO_HOOK_POINT: the policy sees (sensor, value, link) and
 * may drop the reading, clamp the value or send it over another link. sample_sensor() and
 * radio_tx() carry no hook in the source: the Makefile's HOOK_FUNCTIONS list makes them hook
 * points at build time (firmware_hooks/fixed/hookgen.py), with their arguments: the policy may
 * read another sensor, refuse a transmission (radio_tx then returns the policy's code) or
 * relabel its unit (a pointer argument), and counts the calls in its `calls` map.
 * The same source builds for the host and for a Cortex-M4 (startup_m4.c, semihost_m4.c, m4.ld:
 * qemu-system-arm -M mps2-an386 runs it).
 */
#include <stdio.h>

#include "fohook_fixed.h"

#define SENSORS 5
#define LINKS 2

/* The policy object, linked in by policy_blob.S. */
extern const unsigned char fohook_policy_elf[];
extern const unsigned char fohook_policy_elf_end[];

/* Everything the VM needs lives here: no heap. */
static unsigned char vm_arena[64 * 1024] __attribute__((aligned(16)));

static fo_u32 sent_on_link[LINKS];

/* What each sensor measures in; the pointers are radio_tx's `unit` argument. */
static const char unit_celsius[] = "C", unit_raw[] = "raw", unit_millivolt[] = "mV";
static const char *const sensor_unit[SENSORS] = {unit_celsius, unit_celsius, unit_millivolt,
                                                 unit_raw, unit_raw};

/* A deterministic "measurement": sensor i reads 150 * i + 20. */
fo_u32 sample_sensor(fo_u32 sensor)
{
    return 150u * sensor + 20u;
}

int radio_tx(fo_u32 link, const char *unit, fo_u32 sensor, fo_u32 value)
{
    if (link >= LINKS)
        return -1;
    sent_on_link[link]++;
    printf("tx link=%u sensor=%u value=%u unit=%s\n", (unsigned)link, (unsigned)sensor,
           (unsigned)value, unit);
    return 0;
}

int send_reading(fo_u32 sensor, fo_u32 value, fo_u32 link)
{
    struct fohook_ctx c = FOHOOK_CTX3(sensor, value, link);

    if (FO_HOOK_POINT(send_reading, &c) == FOHOOK_DROP) {
        printf("drop sensor=%u\n", (unsigned)sensor);
        return 0;
    }
    return radio_tx((fo_u32)c.args[2], sensor_unit[sensor], sensor, (fo_u32)c.args[1]);
}

/* What the center would push as a map update (the layout of policy.c's struct fw_config):
 * drop sensor 3, clamp at 500, link 0 -> 1; sensor 1 is faulty, read sensor 2 instead; send
 * nothing below 100; "raw" readings are labelled "mV". */
static int configure_policy(void)
{
    struct {
        fo_u32 drop_sensor, max_value, from_link, to_link;
        fo_u32 faulty_sensor, spare_sensor, min_value, reserved;
        fo_u64 unit_from, unit_to;
    } cfg = {3, 500, 0, 1, 1, 2, 100, 0, (fo_u64)(size_t)unit_raw, (fo_u64)(size_t)unit_millivolt};
    fo_u32 zero = 0;
    fovm_error err;
    fovm_map *map = fovm_map_find(fohook_fixed_vm(), "config");

    if (map == NULL || fovm_map_update(map, &zero, &cfg, FOVM_ANY, &err) != FOVM_OK) {
        printf("policy: cannot fill its config map\n");
        return -1;
    }
    return 0;
}

static void print_calls(const char *name)
{
    fovm_map *map = fovm_map_find(fohook_fixed_vm(), "calls");
    fo_u32 key = fohook_id(name);
    fo_u64 n = 0;
    fovm_error err;

    if (map == NULL || fovm_map_lookup(map, &key, &n, &err) != FOVM_OK)
        n = 0;
    printf("calls %s=%u\n", name, (unsigned)n);
}

int firmware_main(int with_policy)
{
    fovm_error err;
    fo_u32 s;

    if (with_policy) {
        size_t len = (size_t)(fohook_policy_elf_end - fohook_policy_elf);
        if (fohook_fixed_init(vm_arena, sizeof(vm_arena), fohook_policy_elf, len, &err) ==
            FOVM_OK) {
            printf("policy: installed (%u instrumented functions)\n",
                   (unsigned)fohook_instrument_count());
            configure_policy();
        } else {
            printf("policy: not installed: %s\n", err.msg); /* hook points fail open */
        }
    }
    for (s = 0; s < SENSORS; s++) {
        int rc = send_reading(s, sample_sensor(s), 0);
        if (rc != 0)
            printf("send sensor=%u rc=%d\n", (unsigned)s, rc);
    }
    printf("sent link0=%u link1=%u\n", (unsigned)sent_on_link[0], (unsigned)sent_on_link[1]);
    if (fohook_fixed_vm() != NULL) {
        print_calls("sample_sensor");
        print_calls("radio_tx");
    }
    return 0;
}
