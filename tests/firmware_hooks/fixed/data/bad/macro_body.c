/* HOOK_FUNCTIONS = wrapped */
/* error: bad/macro_body.c:5: wrapped: its body comes from a macro; place FO_HOOK_POINT by hand */
#define BODY { return x + 1; }

int wrapped(int x) BODY
