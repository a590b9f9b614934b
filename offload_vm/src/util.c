/* Small utilities: error formatting and byte copies. Hosted builds use string.h; freestanding
 * builds (firmware) use plain loops, so the core needs no libc there. */
#include "fovm_int.h"

#if __STDC_HOSTED__
#include <string.h>

void fovm_copy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
void fovm_zero(void *dst, size_t n) { memset(dst, 0, n); }
int fovm_equal(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }
#else
void fovm_copy(void *dst, const void *src, size_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)dst; /* volatile: no call to memcpy */
    const uint8_t *s = (const uint8_t *)src;
    while (n--)
        *d++ = *s++;
}

void fovm_zero(void *dst, size_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)dst; /* volatile: no call to memset */
    while (n--)
        *d++ = 0;
}

int fovm_equal(const void *a, const void *b, size_t n)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    while (n--)
        if (*x++ != *y++)
            return 0;
    return 1;
}
#endif

int fovm_is_zero(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    while (n--)
        if (*b++)
            return 0;
    return 1;
}

size_t fovm_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void fovm_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    if (cap == 0)
        return;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

int fovm_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

struct fovm_out {
    char *buf;
    size_t cap, len;
};

static void put(struct fovm_out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct fovm_out *o, uint64_t v, unsigned base, int neg)
{
    char tmp[24];
    int n = 0;
    if (neg)
        put(o, '-');
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put(o, tmp[--n]);
}

/* Conversions: %s %c %d %u %x (int-sized), %D %U %X (64-bit), %%. */
size_t fovm_vformat(char *out, size_t cap, const char *fmt, va_list ap)
{
    struct fovm_out o = {out, cap, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%' || !fmt[1]) {
            put(&o, *fmt);
            continue;
        }
        switch (*++fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (s && *s)
                put(&o, *s++);
            break;
        }
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case 'd': {
            int v = va_arg(ap, int);
            put_num(&o, v < 0 ? 0u - (uint64_t)(int64_t)v : (uint64_t)v, 10, v < 0);
            break;
        }
        case 'u': put_num(&o, va_arg(ap, unsigned), 10, 0); break;
        case 'x': put_num(&o, va_arg(ap, unsigned), 16, 0); break;
        case 'D': {
            int64_t v = va_arg(ap, int64_t);
            put_num(&o, v < 0 ? 0u - (uint64_t)v : (uint64_t)v, 10, v < 0);
            break;
        }
        case 'U': put_num(&o, va_arg(ap, uint64_t), 10, 0); break;
        case 'X': put_num(&o, va_arg(ap, uint64_t), 16, 0); break;
        default: put(&o, *fmt); break;
        }
    }
    if (cap)
        out[o.len < cap ? o.len : cap - 1] = 0;
    return o.len < cap ? o.len : (cap ? cap - 1 : 0);
}

int fovm_fail(fovm_error *err, int code, int pc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->pc = pc;
        fovm_vformat(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Like fovm_fail, then " at PC n" (pc >= 0). */
int fovm_fail_at(fovm_error *err, int code, int pc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        size_t n;
        va_start(ap, fmt);
        err->code = code;
        err->pc = pc;
        n = fovm_vformat(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (pc >= 0)
            fovm_format(err->msg + n, sizeof err->msg - n, " at PC %d", pc);
    }
    return code;
}

size_t fovm_format(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    va_start(ap, fmt);
    n = fovm_vformat(out, cap, fmt, ap);
    va_end(ap);
    return n;
}
