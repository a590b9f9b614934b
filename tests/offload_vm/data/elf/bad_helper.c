/* Calls helper 99, which no VM registers: `vm check` must reject it with its PC. */
#include "bpf.h"

static long (*unknown_helper)(u64 a) = (void *)99;

SEC("good")
int good_prog(void *ctx)
{
    return 7;
}

SEC("bad")
int bad_prog(void *ctx)
{
    return unknown_helper(1);
}
