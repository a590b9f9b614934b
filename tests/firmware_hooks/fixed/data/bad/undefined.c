/* HOOK_FUNCTIONS = present missing */
/* error: HOOK_FUNCTIONS: no definition of 'missing' in bad/undefined.c */
int missing(int x);

int present(int x)
{
    return missing(x);
}
