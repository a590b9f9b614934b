/* Functions of every kind hookgen.py makes hook points of: static, signed 64-bit, pointer
 * arguments and return, function pointers (through a typedef and spelled out), void return,
 * const parameters, narrow integers, enums; `untouched` is never listed. The policy (kinds_policy.c) changes what each does; main() prints the results.
 * Usage: kinds POLICY.o */
#include <stdio.h>
#include <stdlib.h>

#include "fohook_fixed.h"
#include "kinds_types.h"

static long long scale(long long x, int k)
{
    return x * k;
}

const char *pick(const char *a, const char *b)
{
    return a != NULL ? a : b;
}

static int notes;

void note(const int level, unsigned char *const tag)
{
    notes += level;
    tag[0] = 'n';
}

unsigned char narrow(unsigned char c, enum mode m)
{
    return (unsigned char)(c + (m == MODE_FAST ? 1 : 0));
}

typedef int (*op_fn)(int);

static int twice(int x)
{
    return 2 * x;
}

static int thrice(int x)
{
    return 3 * x;
}

op_fn choose(op_fn a, op_fn b)
{
    return a != NULL ? a : b;
}

int (*choose_raw(int which))(int)
{
    return which ? thrice : twice;
}

int untouched(int x)
{
    return x + 1;
}

static unsigned char arena[64 * 1024] __attribute__((aligned(16)));

int main(int argc, char **argv)
{
    static char elf[1 << 20];
    unsigned char tag[2] = {'-', 0};
    fovm_error err;
    size_t len = 0;
    FILE *f;

    if (argc > 1) {
        f = fopen(argv[1], "rb");
        if (f == NULL)
            return 2;
        len = fread(elf, 1, sizeof(elf), f);
        fclose(f);
        if (fohook_fixed_init(arena, sizeof(arena), elf, len, &err) != FOVM_OK) {
            printf("policy: %s\n", err.msg);
            return 2;
        }
    }
    printf("scale=%lld\n", scale(-3, 7));
    printf("scale_big=%lld\n", scale(5000000000LL, 2));
    printf("pick=%s\n", pick("first", "second"));
    note(5, tag);
    printf("notes=%d tag=%s\n", notes, (char *)tag);
    printf("narrow=%u\n", (unsigned)narrow(200, MODE_SLOW));
    printf("choose=%d\n", choose(twice, thrice)(7));
    printf("choose_raw=%d\n", choose_raw(0)(7));
    printf("untouched=%d\n", untouched(41));
    return 0;
}
