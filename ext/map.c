/*
** map.c — open-addressing hash from 64-bit keys to ints.
*/
#include <stdlib.h>

#include "map.h"


int map_init (IntMap *m, uint32_t cap) {
  uint32_t i;
  m->keys = malloc(cap * sizeof *m->keys);
  m->vals = malloc(cap * sizeof *m->vals);
  if (m->keys == NULL || m->vals == NULL) {
    free(m->keys); free(m->vals);
    m->keys = NULL; m->vals = NULL;
    return 0;
  }
  for (i = 0; i < cap; i++) m->vals[i] = -1;
  m->cap = cap;
  m->count = 0;
  return 1;
}


void map_free (IntMap *m) {
  free(m->keys);
  free(m->vals);
  m->keys = NULL; m->vals = NULL;
  m->cap = m->count = 0;
}


static uint32_t mix (uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (uint32_t)k;
}


static int map_grow (IntMap *m) {
  IntMap bigger;
  uint32_t i;
  if (!map_init(&bigger, m->cap * 2)) return 0;
  for (i = 0; i < m->cap; i++) {
    if (m->vals[i] >= 0) {
      uint32_t j = mix(m->keys[i]) & (bigger.cap - 1);
      while (bigger.vals[j] >= 0) j = (j + 1) & (bigger.cap - 1);
      bigger.keys[j] = m->keys[i];
      bigger.vals[j] = m->vals[i];
      bigger.count++;
    }
  }
  map_free(m);
  *m = bigger;
  return 1;
}


int map_put (IntMap *m, uint64_t key, int val) {
  uint32_t j;
  if ((m->count + 1) * 2 > m->cap && !map_grow(m)) return 0;
  j = mix(key) & (m->cap - 1);
  while (m->vals[j] >= 0) j = (j + 1) & (m->cap - 1);
  m->keys[j] = key;
  m->vals[j] = val;
  m->count++;
  return 1;
}



/* First slot to probe for 'key'; walk on with (j + 1) & (cap - 1) while
** vals[j] >= 0, checking keys[j] == key. */
uint32_t map_slot (const IntMap *m, uint64_t key) {
  return mix(key) & (m->cap - 1);
}


/* The value stored under 'key' (the first one, if several), or -1. */
int map_get (const IntMap *m, uint64_t key) {
  uint32_t j = map_slot(m, key);
  for (; m->vals[j] >= 0; j = (j + 1) & (m->cap - 1))
    if (m->keys[j] == key) return m->vals[j];
  return -1;
}
