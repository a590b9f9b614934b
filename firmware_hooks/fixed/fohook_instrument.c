/*
 * Hook points from a list of function names, placed by -finstrument-functions.
 *
 * Compile the application's sources with -finstrument-functions and this file (never
 * instrumented) with -DFOHOOK_FUNCTIONS='FOHOOK_FN(a) FOHOOK_FN(b)'. Every instrumented
 * function calls __cyg_profile_func_enter on entry; the ones in the list run the policy.
 * The table is sorted by address on first use and searched by bisection, so an unlisted
 * function costs one search and nothing else.
 */
#include "fohook_fixed.h"

#ifndef FOHOOK_FUNCTIONS
#define FOHOOK_FUNCTIONS /* empty list: every instrumented call just returns */
#endif

#define NOINSTR __attribute__((no_instrument_function))

/* Only the address of each listed function is taken; its real prototype does not matter. */
#define FOHOOK_FN(f) extern void f(void);
FOHOOK_FUNCTIONS
#undef FOHOOK_FN

struct fohook_entry {
    void (*fn)(void);
    const char *name;
    fo_u64 addr; /* filled on first use: fn as a code address */
    fo_u32 id;   /* filled on first use: fohook_id(name) */
};

#define FOHOOK_FN(f) {f, #f, 0, 0},
static struct fohook_entry g_table[] = {FOHOOK_FUNCTIONS {0, "", 0, 0}};
#undef FOHOOK_FN

/* Entries without the terminator; a variable so that an empty list compiles warning-free. */
static const size_t g_table_len = sizeof(g_table) / sizeof(g_table[0]) - 1;
#define TABLE_LEN g_table_len

static int g_ready;

/* Thumb function pointers carry bit 0; the enter hook gets the same form, but compare
 * without it so either spelling matches. */
static NOINSTR fo_u64 code_addr(fo_u64 a)
{
    return a & ~(fo_u64)1;
}

static NOINSTR void prepare_table(void)
{
    size_t i, j;
    for (i = 0; i < TABLE_LEN; i++) {
        g_table[i].addr = code_addr((fo_u64)(size_t)g_table[i].fn);
        g_table[i].id = fohook_id(g_table[i].name);
    }
    for (i = 1; i < TABLE_LEN; i++) { /* insertion sort: the list is short */
        struct fohook_entry e = g_table[i];
        for (j = i; j > 0 && g_table[j - 1].addr > e.addr; j--)
            g_table[j] = g_table[j - 1];
        g_table[j] = e;
    }
    g_ready = 1;
}

static NOINSTR const struct fohook_entry *find_entry(fo_u64 addr)
{
    size_t lo = 0, hi = TABLE_LEN;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g_table[mid].addr == addr)
            return &g_table[mid];
        if (g_table[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* How many functions the list names (for the firmware's start-up log). */
NOINSTR size_t fohook_instrument_count(void)
{
    return TABLE_LEN;
}

NOINSTR void __cyg_profile_func_enter(void *fn, void *call_site)
{
    const struct fohook_entry *e;
    struct fohook_ctx ctx = FOHOOK_CTX0();

    if (TABLE_LEN == 0)
        return;
    if (!g_ready)
        prepare_table();
    e = find_entry(code_addr((fo_u64)(size_t)fn));
    if (e == NULL)
        return;
    ctx.hook = e->id;
    ctx.source = FOHOOK_SRC_INSTRUMENT;
    ctx.fn = (fo_u64)(size_t)fn;
    ctx.call_site = (fo_u64)(size_t)call_site;
    (void)fohook_fixed_run(&ctx);
}

NOINSTR void __cyg_profile_func_exit(void *fn, void *call_site)
{
    (void)fn;
    (void)call_site;
}
