/*
 * Open-addressing hash table with fixed-size keys and 32-bit values.
 *
 * Owns: linear probing with backward-shift deletion (no tombstones, so
 * lookups stay short under churn), growth at half load, a per-table seed so
 * remote peers cannot aim collisions. Used for set members and flow keys.
 */
#ifndef KP_HASH_H
#define KP_HASH_H

#include <stdint.h>
#include <stddef.h>

/* Results, equal to kpol's KP_E_* and ksvc's KS_E_* (each core asserts it), so that the
 * cores pass them through unchanged. */
enum {
  KP_HASH_OK = 0,
  KP_HASH_E_INVAL = -1,
  KP_HASH_E_NOENT = -2,
  KP_HASH_E_EXISTS = -3,
  KP_HASH_E_NOMEM = -5,
};

/* Slots hold hash, value and key together (one cache line for a flow key),
 * so a lookup that hits costs one miss rather than one per array. */
typedef struct {
  uint32_t key_size;
  uint32_t stride; /* bytes per slot: hash (8), value (4), key, padded to 8 */
  uint32_t cap;    /* power of two */
  uint32_t count;
  uint32_t max_cap; /* 0 = unbounded growth */
  uint64_t seed;
  uint8_t *slots;
} kp_hash_t;

uint64_t kp_hash_bytes(const void *key, size_t len, uint64_t seed);
int kp_hash_init(kp_hash_t *h, uint32_t key_size, uint32_t min_entries, uint32_t max_entries,
                 uint64_t seed);
void kp_hash_free(kp_hash_t *h);
void kp_hash_clear(kp_hash_t *h);
/* 1 and *val when found, 0 otherwise. */
int kp_hash_find(const kp_hash_t *h, const void *key, uint32_t *val);
/* The same with the key's hash already computed (kp_hash_bytes with this
 * table's seed): tables sharing a seed share one hash of a packet's key. */
int kp_hash_find_hv(const kp_hash_t *h, const void *key, uint64_t hv, uint32_t *val);
/* 0, KP_HASH_E_EXISTS, KP_HASH_E_NOMEM (growth failed or max reached). */
int kp_hash_insert(kp_hash_t *h, const void *key, uint32_t val);
/* 0 or KP_HASH_E_NOENT. */
int kp_hash_remove(kp_hash_t *h, const void *key);
static inline uint64_t *kp_hash_slot_hash(const kp_hash_t *h, uint32_t i) {
  return (uint64_t *)(void *)(h->slots + (size_t)i * h->stride);
}
/* Iteration over slots 0..cap-1: slot i is used when this is non-zero. */
static inline uint64_t kp_hash_used(const kp_hash_t *h, uint32_t i) { return *kp_hash_slot_hash(h, i); }
static inline uint32_t *kp_hash_val_at(const kp_hash_t *h, uint32_t i) {
  return (uint32_t *)(void *)(h->slots + (size_t)i * h->stride + 8);
}
static inline void *kp_hash_key_at(const kp_hash_t *h, uint32_t i) {
  return h->slots + (size_t)i * h->stride + 12;
}

#endif
