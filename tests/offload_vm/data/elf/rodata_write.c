/* Writes to a constant in .rodata through a cast: the VM must fault (read-only region). */
#include "bpf.h"

const volatile u32 answer = 42;

SEC("read")
int read_answer(void *ctx)
{
    return answer;
}

SEC("write")
int write_answer(void *ctx)
{
    *(volatile u32 *)&answer = 7;
    return answer;
}
