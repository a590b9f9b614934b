/* A policy that calls a helper no VM provides (number 99): the verifier refuses it. */
#include <freeoffload/policy.h>

static long (*const no_such_helper)(void) = (void *)99;

FO_CONNECT_POLICY(bad_helper)
{
    return no_such_helper() ? FO_REWRITE : FO_PASS;
}
