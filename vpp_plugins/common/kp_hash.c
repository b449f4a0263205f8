/* Open-addressing hash table; see kp_hash.h. */
#include "kp_hash.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t kp_hash_bytes(const void *key, size_t len, uint64_t seed) {
  const uint8_t *p = key;
  uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ mix64(w ^ 0x5555)) * 0x9e3779b97f4a7c15ULL;
  }
  h = mix64(h);
  return h ? h : 1; /* 0 marks an empty slot */
}

static int alloc_arrays(kp_hash_t *h, uint32_t cap) {
  h->slots = calloc(cap, h->stride);
  if (!h->slots) return KP_HASH_E_NOMEM;
  h->cap = cap;
  return KP_HASH_OK;
}

static uint32_t cap_for(uint32_t entries) {
  uint32_t cap = 16;
  while (cap < 2ull * entries && cap < (1u << 31)) cap <<= 1;
  return cap;
}

int kp_hash_init(kp_hash_t *h, uint32_t key_size, uint32_t min_entries, uint32_t max_entries,
                 uint64_t seed) {
  memset(h, 0, sizeof(*h));
  if (key_size == 0 || key_size > 4096) return KP_HASH_E_INVAL;
  h->key_size = key_size;
  h->stride = (8 + 4 + key_size + 7) & ~7u;
  h->seed = seed;
  h->max_cap = max_entries ? cap_for(max_entries) : 0;
  return alloc_arrays(h, cap_for(min_entries));
}

void kp_hash_free(kp_hash_t *h) {
  free(h->slots);
  memset(h, 0, sizeof(*h));
}

void kp_hash_clear(kp_hash_t *h) {
  memset(h->slots, 0, (size_t)h->cap * h->stride);
  h->count = 0;
}

static inline uint32_t slot_of(const kp_hash_t *h, const void *key, uint64_t hv) {
  uint32_t mask = h->cap - 1, i = (uint32_t)hv & mask;
  uint64_t used;
  while ((used = kp_hash_used(h, i))) {
    if (used == hv && memcmp(kp_hash_key_at(h, i), key, h->key_size) == 0) return i;
    i = (i + 1) & mask;
  }
  return UINT32_MAX;
}

int kp_hash_find(const kp_hash_t *h, const void *key, uint32_t *val) {
  return kp_hash_find_hv(h, key, kp_hash_bytes(key, h->key_size, h->seed), val);
}

int kp_hash_find_hv(const kp_hash_t *h, const void *key, uint64_t hv, uint32_t *val) {
  uint32_t i = slot_of(h, key, hv);
  if (i == UINT32_MAX) return 0;
  if (val) *val = *kp_hash_val_at(h, i);
  return 1;
}

static void place(kp_hash_t *h, uint64_t hv, const void *key, uint32_t val) {
  uint32_t mask = h->cap - 1, i = (uint32_t)hv & mask;
  while (kp_hash_used(h, i)) i = (i + 1) & mask;
  *kp_hash_slot_hash(h, i) = hv;
  *kp_hash_val_at(h, i) = val;
  memcpy(kp_hash_key_at(h, i), key, h->key_size);
}

static int grow(kp_hash_t *h) {
  kp_hash_t old = *h;
  if (h->max_cap && h->cap >= h->max_cap) return KP_HASH_E_NOMEM;
  if (old.cap >= (1u << 31)) return KP_HASH_E_NOMEM;
  if (alloc_arrays(h, old.cap * 2) != KP_HASH_OK) {
    *h = old;
    return KP_HASH_E_NOMEM;
  }
  for (uint32_t i = 0; i < old.cap; i++)
    if (kp_hash_used(&old, i))
      place(h, kp_hash_used(&old, i), kp_hash_key_at(&old, i), *kp_hash_val_at(&old, i));
  free(old.slots);
  return KP_HASH_OK;
}

int kp_hash_insert(kp_hash_t *h, const void *key, uint32_t val) {
  uint64_t hv = kp_hash_bytes(key, h->key_size, h->seed);
  if (slot_of(h, key, hv) != UINT32_MAX) return KP_HASH_E_EXISTS;
  if (2ull * (h->count + 1) > h->cap) {
    int rv = grow(h);
    if (rv) return rv;
  }
  place(h, hv, key, val);
  h->count++;
  return KP_HASH_OK;
}

int kp_hash_remove(kp_hash_t *h, const void *key) {
  uint64_t hv = kp_hash_bytes(key, h->key_size, h->seed);
  uint32_t mask = h->cap - 1, i = slot_of(h, key, hv);
  if (i == UINT32_MAX) return KP_HASH_E_NOENT;
  /* Backward shift: pull later entries of the probe run into the hole when
   * the hole lies between their home slot and their current slot. */
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint64_t hj = kp_hash_used(h, j);
    if (!hj) break;
    uint32_t home = (uint32_t)hj & mask;
    int movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      memcpy(h->slots + (size_t)i * h->stride, h->slots + (size_t)j * h->stride, h->stride);
      i = j;
    }
  }
  *kp_hash_slot_hash(h, i) = 0;
  h->count--;
  return KP_HASH_OK;
}
