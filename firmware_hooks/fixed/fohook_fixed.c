/*
 * fohook_fixed runtime: one VM in a caller-supplied arena, run at fixed hook points.
 * Freestanding: no libc, no heap.
 */
#include "fohook_fixed.h"

static fovm_vm *g_vm;
static int g_busy; /* re-entrancy guard: a hook point reached from inside a policy run */
static struct fohook_stats g_stats;

int fohook_fixed_init(void *arena, size_t arena_len, const void *elf, size_t elf_len,
                              fovm_error *err)
{
    fovm_vm *vm;
    int rc;

    g_vm = NULL; /* from here on hook points continue unchanged until the new policy loads */
    vm = fovm_create_in(arena, arena_len, err);
    if (vm == NULL)
        return err != NULL && err->code != 0 ? err->code : FOVM_E_NOMEM;
    rc = fovm_load_elf(vm, elf, elf_len, NULL, err);
    if (rc != FOVM_OK) {
        fovm_destroy(vm);
        return rc;
    }
    g_vm = vm;
    return FOVM_OK;
}

fovm_vm *fohook_fixed_vm(void)
{
    return g_vm;
}

fo_u64 fohook_fixed_run(struct fohook_ctx *ctx)
{
    fovm_error err;
    uint64_t r0 = 0;
    int rc;

    if (g_vm == NULL || g_busy)
        return FOHOOK_NO_POLICY;
    g_busy = 1;
    rc = fovm_exec(g_vm, ctx, sizeof(*ctx), &r0, &err);
    g_busy = 0;
    g_stats.runs++;
    if (rc != FOVM_OK) {
        g_stats.faults++;
        g_stats.last_error = rc;
        r0 = FOHOOK_NO_POLICY;
    }
    g_stats.last_verdict = r0;
    return r0;
}

void fohook_fixed_stats(struct fohook_stats *out)
{
    *out = g_stats;
}

fo_u64 fohook_last_verdict(void)
{
    return g_stats.last_verdict;
}
