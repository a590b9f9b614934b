/* The policy of kinds.c: every rule depends on an argument's value. */
#include <fohook_fixed.h>

SEC("fohook") int kinds_policy(struct fohook_ctx *ctx)
{
    if (ctx->source != FOHOOK_SRC_INSTRUMENT)
        return FOHOOK_CONTINUE;
    if (ctx->hook == fohook_id("scale") && ctx->nargs == 2) {
        /* a negative x (sign-extended to 64 bits) is refused with -1; a large one halved */
        if ((long long)ctx->args[0] < 0) {
            ctx->ret = (fo_u64)-1LL;
            return FOHOOK_DROP;
        }
        if (ctx->args[0] > 0xffffffffULL)
            ctx->args[0] /= 2;
        return FOHOOK_CONTINUE;
    }
    if (ctx->hook == fohook_id("pick") && ctx->nargs == 2) {
        /* both pointers seen: the call returns the second without running */
        if (ctx->args[0] != 0 && ctx->args[1] != 0) {
            ctx->ret = ctx->args[1];
            return FOHOOK_DROP;
        }
        return FOHOOK_CONTINUE;
    }
    if (ctx->hook == fohook_id("note") && ctx->nargs == 2) {
        ctx->args[0] = 100; /* const parameter: the rewrite is not applied */
        return ctx->args[1] != 0 ? FOHOOK_CONTINUE : FOHOOK_DROP;
    }
    if (ctx->hook == fohook_id("choose") && ctx->nargs == 2) {
        ctx->ret = ctx->args[1]; /* a function pointer handed back */
        return FOHOOK_DROP;
    }
    if (ctx->hook == fohook_id("choose_raw") && ctx->nargs == 1) {
        ctx->args[0] = !ctx->args[0];
        return FOHOOK_CONTINUE;
    }
    if (ctx->hook == fohook_id("narrow") && ctx->nargs == 2) {
        if (ctx->args[0] == 200 && ctx->args[1] == 0) /* MODE_SLOW */
            ctx->args[1] = 1;                         /* -> MODE_FAST */
        return FOHOOK_CONTINUE;
    }
    return FOHOOK_CONTINUE;
}
