/*
 * Layouts shared by the table code (kpol_core.c) and the flow code
 * (kp_flow.c); not part of the public API.
 */
#ifndef KP_INTERNAL_H
#define KP_INTERNAL_H

#include "../../common/kp_hash.h"
#include "kp_lpm.h"
#include "kpol_core.h"

_Static_assert((int)KP_E_INVAL == (int)KP_HASH_E_INVAL && (int)KP_E_NOENT == (int)KP_HASH_E_NOENT &&
               (int)KP_E_EXISTS == (int)KP_HASH_E_EXISTS && (int)KP_E_NOMEM == (int)KP_HASH_E_NOMEM,
               "the hash's results pass through as this core's");

/* Member key of ADDR and ADDR_PORT sets (ADDR leaves proto/port zero). */
typedef struct {
  uint8_t a[16];
  uint16_t port;
  uint8_t proto;
  uint8_t pad;
} kp_mkey_t;

typedef struct {
  uint32_t id;
  kp_set_kind_t kind;
  uint32_t refs; /* rules referring to this set */
  kp_hash_t h;   /* ADDR, ADDR_PORT */
  kp_lpm_t lpm;  /* NET */
} kp_set_t;

typedef struct {
  uint8_t any_peer;
  uint32_t n_peers, n_ports, n_pp;
  kp_set_t **peers;
  kp_port_range_t *ports;
  kp_set_t **pp;
  uint32_t *peer_ids, *pp_ids; /* as given, for dumps */
} kp_rule_t;

typedef struct {
  uint32_t n_rules;
  kp_rule_t *rules;
  uint64_t seed;   /* the tables' hash seed, shared by every set */
  uint32_t stride; /* u64s per thread row, a multiple of a cache line */
  uint64_t *ctr;   /* [thread][0] = default deny, [thread][1 + rule] = hits */
} kp_dirpol_t;

typedef struct {
  kp_dirpol_t *dir[2];
  uint32_t attached;
} kp_policy_t;

struct kp_tables {
  uint32_t n_threads;
  uint64_t seed;
  /* Bumped by every change that can turn an allow into a deny, so cached
   * forward flows are re-evaluated once after it. */
  uint64_t gen;
  kp_set_t **sets;
  uint32_t sets_cap;
  kp_policy_t **pols;
  uint32_t pols_cap;
  uint32_t *attach; /* sw_if_index -> policy id + 1, 0 = none */
  uint32_t attach_cap;
};

static inline const kp_policy_t *kp_policy_of_if(const kp_tables_t *t, uint32_t sw_if) {
  if (sw_if >= t->attach_cap || !t->attach[sw_if]) return 0;
  return t->pols[t->attach[sw_if] - 1];
}

/* Evaluates one direction; counts the verdict in thread's row when count. */
kp_verdict_t kp_eval_dir(const kp_dirpol_t *d, kp_dir_t dir, const kp_packet_t *p);

static inline void kp_count(const kp_dirpol_t *d, uint32_t thread, int32_t rule) {
  d->ctr[(size_t)thread * d->stride + (size_t)(rule + 1)]++;
}

#endif
