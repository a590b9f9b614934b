/* bench/hook.py: the smallest LD_AUDIT module that would see every object load
 * (la_version + la_objopen + la_activity), to compare its start-up cost with the hook's. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>

unsigned int la_version(unsigned int version)
{
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    (void)map;
    (void)lmid;
    (void)cookie;
    return 0; /* no symbol binding callbacks */
}

void la_activity(uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    (void)flag;
}
