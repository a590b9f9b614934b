/* HOOK_FUNCTIONS = seven */
/* error: bad/too_many_args.c:3: seven: 7 parameters; at most 6 */
int seven(int a, int b, int c, int d, int e, int f, int g)
{
    return a + b + c + d + e + f + g;
}
