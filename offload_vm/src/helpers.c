/* The built-in helpers, numbered as in Linux: map_lookup_elem (1), map_update_elem (2),
 * map_delete_elem (3), ktime_get_ns (5), trace_printk (6), get_prandom_u32 (7). */
#if __STDC_HOSTED__ && !defined(FOVM_NO_CLOCK) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#endif
#include "fovm_int.h"

#if __STDC_HOSTED__ && !defined(FOVM_NO_CLOCK)
#include <time.h>
#define FOVM_HAVE_CLOCK 1
#else
#define FOVM_HAVE_CLOCK 0
#endif

static int bad_ptr(struct fovm_run *run, const char *what, uint64_t p, uint64_t n)
{
    return fovm_fail_at(run->err, FOVM_E_HELPER, run->pc,
                        "helper got a bad %s pointer 0x%X (%U bytes)", what, p, n);
}

static struct fovm_map *map_arg(struct fovm_run *run, uint64_t p)
{
    if (!fovm_map_owned(run->vm, p)) {
        fovm_fail_at(run->err, FOVM_E_HELPER, run->pc, "helper got 0x%X, which is not a map", p);
        return NULL;
    }
    return (struct fovm_map *)(uintptr_t)p;
}

static int h_lookup(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
    struct fovm_map *m = map_arg(run, a[0]);
    if (!m)
        return FOVM_E_HELPER;
    if (!fovm_mem_ok(run, a[1], m->info.key_size, 0))
        return bad_ptr(run, "key", a[1], m->info.key_size);
    return fovm_map_prog_lookup(run, m, (const void *)(uintptr_t)a[1], ret);
}

static int h_update(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
    struct fovm_map *m = map_arg(run, a[0]);
    if (!m)
        return FOVM_E_HELPER;
    if (!fovm_mem_ok(run, a[1], m->info.key_size, 0))
        return bad_ptr(run, "key", a[1], m->info.key_size);
    if (!fovm_mem_ok(run, a[2], m->info.value_size, 0))
        return bad_ptr(run, "value", a[2], m->info.value_size);
    /* Linux returns a negative errno; programs test for nonzero. */
    *ret = fovm_map_update(m, (const void *)(uintptr_t)a[1], (const void *)(uintptr_t)a[2],
                           a[3], NULL) ? (uint64_t)-1 : 0;
    return 0;
}

static int h_delete(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
    struct fovm_map *m = map_arg(run, a[0]);
    if (!m)
        return FOVM_E_HELPER;
    if (!fovm_mem_ok(run, a[1], m->info.key_size, 0))
        return bad_ptr(run, "key", a[1], m->info.key_size);
    *ret = fovm_map_delete(m, (const void *)(uintptr_t)a[1], NULL) ? (uint64_t)-1 : 0;
    return 0;
}

static int h_ktime(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
#if FOVM_HAVE_CLOCK
    struct timespec ts;
    (void)run;
    (void)a;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return fovm_fail_at(run->err, FOVM_E_HELPER, run->pc, "ktime_get_ns: no clock");
    *ret = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    (void)run;
    (void)a;
    *ret = 0; /* firmware registers its own helper 5 */
#endif
    return 0;
}

static int h_prandom(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
    uint64_t z;
    (void)a;
#if FOVM_ATOMICS
    z = __atomic_add_fetch(&run->vm->prandom, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
#else
    z = (run->vm->prandom += 0x9e3779b97f4a7c15ull);
#endif
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    *ret = (uint32_t)(z ^ (z >> 31));
    return 0;
}

/* trace_printk(fmt, fmt_size, a, b, c): %d %i %u %x %p with l/ll/h modifiers, and %%.
 * Returns the length of the line, 0 when no trace function is set. */
static int h_trace(struct fovm_run *run, const uint64_t *a, uint64_t *ret)
{
    char out[256];
    const char *f = (const char *)(uintptr_t)a[0];
    uint64_t n = a[1], i, argi = 2;
    size_t len = 0;
    if (n == 0 || !fovm_mem_ok(run, a[0], n, 0))
        return bad_ptr(run, "format", a[0], n);
    if (!run->vm->trace) { /* nobody listens: skip the formatting (policies trace per call) */
        *ret = 0;
        return 0;
    }
    for (i = 0; i < n && f[i] && len + 24 < sizeof out; i++) {
        char c;
        if (f[i] != '%' || i + 1 >= n) {
            if (f[i] != '\n' || i + 1 < n - 1)
                out[len++] = f[i];
            continue;
        }
        while (i + 1 < n && (f[i + 1] == 'l' || f[i + 1] == 'h'))
            i++;
        c = i + 1 < n ? f[++i] : 0;
        if (c == '%') {
            out[len++] = '%';
        } else if (argi <= 4 && (c == 'd' || c == 'i')) {
            len += fovm_format(out + len, sizeof out - len, "%D", (int64_t)a[argi++]);
        } else if (argi <= 4 && c == 'u') {
            len += fovm_format(out + len, sizeof out - len, "%U", a[argi++]);
        } else if (argi <= 4 && (c == 'x' || c == 'p')) {
            len += fovm_format(out + len, sizeof out - len, c == 'p' ? "0x%X" : "%X", a[argi++]);
        } else {
            out[len++] = '?';
        }
    }
    while (len && out[len - 1] == '\n')
        len--;
    out[len] = 0;
    if (run->vm->trace)
        run->vm->trace(run->vm->trace_user, out, len);
    *ret = len;
    return 0;
}

static void add(struct fovm_vm *vm, int slot, uint32_t id, const char *name, unsigned nargs,
                fovm_builtin_fn fn)
{
    struct fovm_helper *h = &vm->helpers[slot];
    h->id = id;
    h->used = 1;
    h->nargs = (uint8_t)nargs;
    h->builtin = fn;
    fovm_strlcpy(h->name, name, sizeof h->name);
    vm->helper_slot[id] = (int8_t)slot;
}

void fovm_builtin_helpers(struct fovm_vm *vm)
{
    add(vm, 0, 1, "map_lookup_elem", 2, h_lookup);
    add(vm, 1, 2, "map_update_elem", 4, h_update);
    add(vm, 2, 3, "map_delete_elem", 2, h_delete);
    add(vm, 3, 5, "ktime_get_ns", 0, h_ktime);
    add(vm, 4, 6, "trace_printk", 2, h_trace);
    add(vm, 5, 7, "get_prandom_u32", 0, h_prandom);
}
