/* C tests of the fohook API (compiled with the library's sources, no LD_PRELOAD): open by
 * name and by address, replace with the old function handed back, the errors. Prints one
 * line per check; exit 1 if any failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fohook.h"

static int failures;
static int my_calls;
static int (*old_abs)(int);

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        int passed_ = (cond);                                              \
        printf("%s %s\n", passed_ ? "ok" : "FAIL", what);                 \
        failures += !passed_;                                              \
    } while (0)

static int my_abs(int v)
{
    my_calls++;
    return old_abs(v) + 1000;
}

/* calls through this object's GOT (volatile: the compiler may not fold abs()) */
static int call_abs(int v)
{
    int (*volatile f)(int) = abs;
    (void)f;
    return abs(*(volatile int *)&v);
}

int main(void)
{
    fohook *h = NULL;
    fohook_err err = {0, ""};
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(fohook_open(&h, NULL, &err) == FOHOOK_OK, "open the main program");
    CHECK(fohook_replace(h, "abs", (void *)my_abs, (void **)&old_abs, &err) == FOHOOK_OK,
          "replace abs");
    CHECK(old_abs != NULL && old_abs(-3) == 3, "old function handed back and callable");
    CHECK(call_abs(-5) == 1005 && my_calls == 1, "calls reach the replacement");
    void *again = (void *)1;
    CHECK(fohook_replace(h, "abs", (void *)my_abs, &again, &err) == FOHOOK_OK && again == NULL,
          "replacing twice hands back NULL, not the replacement");
    CHECK(fohook_replace(h, "fohook_no_such_function", (void *)my_abs, NULL, &err) ==
              FOHOOK_E_NOT_FOUND && strstr(fohook_error(&err), "fohook_no_such_function"),
          "unknown function: FOHOOK_E_NOT_FOUND naming it");
    CHECK(fohook_replace(h, NULL, NULL, NULL, &err) == FOHOOK_E_INVAL, "bad arguments");
    fohook_close(h);
    CHECK(fohook_open(&h, "libc.so.6", &err) == FOHOOK_OK, "open libc by its file name");
    fohook_close(h);
    CHECK(fohook_open_by_address(&h, (void *)main, &err) == FOHOOK_OK, "open by address");
    fohook_close(h);
    CHECK(fohook_open(&h, "libnothere.so", &err) == FOHOOK_E_NOT_FOUND &&
              strstr(fohook_error(&err), "libnothere.so"),
          "unknown object: FOHOOK_E_NOT_FOUND naming it");
    fohook_err fresh = {FOHOOK_E_PROTECT, ""};
    CHECK(strcmp(fohook_error(&fresh), "cannot change memory protection") == 0,
          "a code without a message reads as its description");
    return failures ? 1 : 0;
}
