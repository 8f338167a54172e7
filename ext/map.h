/*
** map.h — open-addressing hash from a 64-bit key to an int. Keys may
** collide on purpose (a hash of a longer key): a lookup walks every slot
** holding the same key and lets the caller choose among them.
*/
#ifndef sprof_map_h
#define sprof_map_h

#include <stdint.h>

typedef struct IntMap {
  uint64_t *keys;
  int *vals;            /* -1 marks an empty slot */
  uint32_t cap;         /* a power of 2 */
  uint32_t count;       /* slots in use */
} IntMap;

int map_init (IntMap *m, uint32_t cap);
void map_free (IntMap *m);
int map_put (IntMap *m, uint64_t key, int val);
int map_get (const IntMap *m, uint64_t key);
uint32_t map_slot (const IntMap *m, uint64_t key);

#endif
