/* A policy reading far past its context: the kernel's verifier refuses it, so the kernel path
 * must leave connections unchanged and say why. */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(out_of_bounds)
{
    volatile fo_u32 *far = (volatile fo_u32 *)((char *)ctx + 4096);
    return *far ? FO_REWRITE : FO_PASS;
}
