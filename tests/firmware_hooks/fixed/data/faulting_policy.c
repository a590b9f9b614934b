/* A policy that reads far outside its context: the VM faults on every run, and the firmware
 * must go on exactly as without a policy (fail open). */
#include <fohook_fixed.h>

SEC("fohook") int faulting_policy(struct fohook_ctx *ctx)
{
    volatile fo_u64 *far = (volatile fo_u64 *)((char *)ctx + 4096);
    return (int)*far;
}
