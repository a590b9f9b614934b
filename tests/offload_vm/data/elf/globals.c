/* Globals in .data, .rodata and .bss (array maps), a bounded loop, a local call and
 * trace_printk with a string constant. */
#include "bpf.h"

const volatile u32 limit = 1000;   /* .rodata */
u64 runs = 5;                      /* .data */
u64 last_sum;                      /* .bss */

static __attribute__((noinline)) u64 add_up(u64 n)
{
    u64 sum = 0;
    for (u64 i = 1; i <= n; i++)
        sum = sum * 31 + i; /* no closed form, so the loop stays a loop */
    return sum;
}

SEC("sum")
int sum_to_limit(void *ctx)
{
    u64 sum = add_up(limit);
    runs++;
    last_sum = sum;
    bpf_trace_printk("sum %llu runs %llu\n", sizeof("sum %llu runs %llu\n"), sum, runs);
    return (int)(sum & 0x7fffffff);
}
