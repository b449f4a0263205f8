/*
 * Per-thread sessions and affinity: the stateful half of ks_process.
 *
 * Owns: a fixed pool of sessions with one hash index holding two keys per
 * session (the client's forward 5-tuple, kind 0, and the backend's reply
 * 5-tuple, kind 1), one expiry-ordered list per timeout class; and a fixed
 * pool of affinity entries (client IP, service uid) -> (backend, last seen)
 * kept in least-recently-seen order. Refreshing moves an entry to its
 * list's tail, so reclaiming and expiry look only at heads (O(1) each).
 *
 * Affinity lives per thread, like sessions, so workers never share writes:
 * with several workers a client's flows that RSS spreads over threads may
 * get different backends. With one worker (or main only) it is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "ks_internal.h"

#define NONE UINT32_MAX
enum { CLS_TCP, CLS_UDP, CLS_OTHER, N_CLS };
enum { KIND_FWD = 0, KIND_REV = 1 };

typedef struct {
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
  uint8_t proto, kind;
  uint8_t pad[2];
} ks_fkey_t;

typedef struct {
  uint8_t client[16];
  uint32_t uid;
} ks_akey_t;

typedef struct {
  ks_fkey_t key; /* forward key: client -> VIP */
  ks_backend_t be;
  uint32_t slot, uid, gen; /* the service, and its gen when last checked */
  uint32_t aff;            /* affinity entry this session refreshes, or NONE */
  uint64_t expires;
  uint32_t prev, next;
  uint8_t cls;
} ks_session_t;

typedef struct {
  ks_akey_t key;
  ks_backend_t be;
  uint64_t last_seen, timeout_ms;
  uint32_t prev, next;
  uint8_t used;
} ks_aff_t;

typedef struct {
  uint32_t head, tail;
} ks_list_t;

struct ks_worker {
  uint32_t max, n_sessions, n_aff;
  uint64_t timeout[N_CLS];
  uint64_t seed;
  ks_session_t *s;
  uint32_t s_free;
  ks_list_t s_list[N_CLS];
  kp_hash_t s_index; /* ks_fkey_t -> session index * 2 + kind */
  ks_aff_t *a;
  uint32_t a_free;
  ks_list_t a_list;
  kp_hash_t a_index; /* ks_akey_t -> affinity index */
  ks_worker_stats_t stats;
};

ks_worker_t *ks_worker_new(uint32_t max_sessions, const ks_timeouts_t *to, uint64_t seed) {
  if (max_sessions == 0 || max_sessions > (1u << 26) || !to) return NULL;
  ks_worker_t *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  w->max = max_sessions;
  w->timeout[CLS_TCP] = to->tcp;
  w->timeout[CLS_UDP] = to->udp;
  w->timeout[CLS_OTHER] = to->other;
  w->seed = seed;
  w->s = calloc(max_sessions, sizeof(*w->s));
  w->a = calloc(max_sessions, sizeof(*w->a));
  int hs = -1, ha = -1;
  if (w->s && w->a) {
    hs = kp_hash_init(&w->s_index, sizeof(ks_fkey_t), 2 * max_sessions, 2 * max_sessions, seed);
    ha = kp_hash_init(&w->a_index, sizeof(ks_akey_t), max_sessions, max_sessions, seed ^ 0x5bd1e995);
  }
  if (hs || ha) {
    if (!hs) kp_hash_free(&w->s_index);
    if (!ha) kp_hash_free(&w->a_index);
    free(w->s);
    free(w->a);
    free(w);
    return NULL;
  }
  for (uint32_t i = 0; i < max_sessions; i++) {
    w->s[i].next = i + 1 < max_sessions ? i + 1 : NONE;
    w->a[i].next = i + 1 < max_sessions ? i + 1 : NONE;
  }
  w->s_free = w->a_free = 0;
  for (int c = 0; c < N_CLS; c++) w->s_list[c].head = w->s_list[c].tail = NONE;
  w->a_list.head = w->a_list.tail = NONE;
  return w;
}

void ks_worker_free(ks_worker_t *w) {
  if (!w) return;
  kp_hash_free(&w->s_index);
  kp_hash_free(&w->a_index);
  free(w->s);
  free(w->a);
  free(w);
}

uint32_t ks_worker_n_sessions(const ks_worker_t *w) { return w->n_sessions; }
uint32_t ks_worker_n_affinity(const ks_worker_t *w) { return w->n_aff; }
const ks_worker_stats_t *ks_worker_stats(const ks_worker_t *w) { return &w->stats; }

/* Doubly linked lists over a pool; the links live in the elements. */
#define LIST_UNLINK(pool, l, i)                                                  \
  do {                                                                           \
    if ((pool)[i].prev != NONE) (pool)[(pool)[i].prev].next = (pool)[i].next;    \
    else (l)->head = (pool)[i].next;                                             \
    if ((pool)[i].next != NONE) (pool)[(pool)[i].next].prev = (pool)[i].prev;    \
    else (l)->tail = (pool)[i].prev;                                             \
  } while (0)
#define LIST_APPEND(pool, l, i)                                                  \
  do {                                                                           \
    (pool)[i].next = NONE;                                                       \
    (pool)[i].prev = (l)->tail;                                                  \
    if ((l)->tail != NONE) (pool)[(l)->tail].next = (i);                         \
    else (l)->head = (i);                                                        \
    (l)->tail = (i);                                                             \
  } while (0)

static inline int cls_of(uint8_t proto) {
  return proto == 6 ? CLS_TCP : proto == 17 ? CLS_UDP : CLS_OTHER;
}

static void fwd_key(ks_fkey_t *k, const ks_packet_t *p) {
  memset(k, 0, sizeof(*k));
  memcpy(k->src, p->src.b, 16);
  memcpy(k->dst, p->dst.b, 16);
  k->sport = p->sport;
  k->dport = p->dport;
  k->proto = p->proto;
  k->kind = KIND_FWD;
}

/* The key of the replies: backend -> client. */
static void rev_key(ks_fkey_t *k, const ks_session_t *s) {
  memset(k, 0, sizeof(*k));
  memcpy(k->src, s->be.addr.b, 16);
  memcpy(k->dst, s->key.src, 16);
  k->sport = s->be.port;
  k->dport = s->key.sport;
  k->proto = s->key.proto;
  k->kind = KIND_REV;
}

static void session_del(ks_worker_t *w, uint32_t i) {
  ks_session_t *s = &w->s[i];
  ks_fkey_t rk;
  rev_key(&rk, s);
  kp_hash_remove(&w->s_index, &s->key);
  kp_hash_remove(&w->s_index, &rk);
  LIST_UNLINK(w->s, &w->s_list[s->cls], i);
  s->next = w->s_free;
  w->s_free = i;
  w->n_sessions--;
}

static void aff_del(ks_worker_t *w, uint32_t i) {
  ks_aff_t *a = &w->a[i];
  kp_hash_remove(&w->a_index, &a->key);
  LIST_UNLINK(w->a, &w->a_list, i);
  a->used = 0;
  a->next = w->a_free;
  w->a_free = i;
  w->n_aff--;
}

static inline int aff_expired(const ks_aff_t *a, uint64_t now) {
  return now - a->last_seen >= a->timeout_ms;
}

uint32_t ks_worker_expire(ks_worker_t *w, uint64_t now, uint32_t budget) {
  uint32_t n = 0;
  for (int c = 0; c < N_CLS; c++) {
    while (n < budget && w->s_list[c].head != NONE && now >= w->s[w->s_list[c].head].expires) {
      session_del(w, w->s_list[c].head);
      w->stats.expired++;
      n++;
    }
  }
  /* least recently seen first; an entry with a long timeout at the head
   * shields later short ones, which then go when used or reclaimed */
  while (n < budget && w->a_list.head != NONE && aff_expired(&w->a[w->a_list.head], now)) {
    aff_del(w, w->a_list.head);
    n++;
  }
  return n;
}

static void session_refresh(ks_worker_t *w, uint32_t i, uint64_t now) {
  ks_session_t *s = &w->s[i];
  s->expires = now + w->timeout[s->cls];
  if (w->s_list[s->cls].tail != i) {
    LIST_UNLINK(w->s, &w->s_list[s->cls], i);
    LIST_APPEND(w->s, &w->s_list[s->cls], i);
  }
}

static void aff_touch(ks_worker_t *w, uint32_t i, uint64_t now) {
  w->a[i].last_seen = now;
  if (w->a_list.tail != i) {
    LIST_UNLINK(w->a, &w->a_list, i);
    LIST_APPEND(w->a, &w->a_list, i);
  }
}

/* A session's packet keeps its client's affinity fresh while that entry
 * still names the session's backend. The entry may have been replaced since
 * the session began (expired, re-picked elsewhere), so the cached index is
 * only a hint, checked against the key. */
static void session_touch_affinity(ks_worker_t *w, ks_session_t *s, uint64_t now) {
  ks_akey_t ak;
  memset(&ak, 0, sizeof(ak));
  memcpy(ak.client, s->key.src, 16);
  ak.uid = s->uid;
  uint32_t i = s->aff;
  if (i == NONE || !w->a[i].used || memcmp(&w->a[i].key, &ak, sizeof(ak)) != 0) {
    if (!kp_hash_find(&w->a_index, &ak, &i)) return;
    s->aff = i;
  }
  ks_aff_t *a = &w->a[i];
  if (ks_backend_cmp(&a->be, &s->be) == 0 && !aff_expired(a, now)) aff_touch(w, i, now);
}

/* Is the session's service still there with its backend? Updates s->gen. */
static int session_valid(const ks_tables_t *t, ks_session_t *s) {
  const ks_service_t *svc = t->svc[s->slot];
  if (!svc || svc->uid != s->uid) return 0;
  if (svc->gen == s->gen) return 1;
  if (!ks_service_has(svc, &s->be.addr, s->be.port)) return 0;
  s->gen = svc->gen;
  return 1;
}

static ks_result_t result(ks_action_t act, const uint8_t addr[16], uint16_t port) {
  ks_result_t r;
  memset(&r, 0, sizeof(r));
  r.action = act;
  if (addr) memcpy(r.addr.b, addr, 16);
  r.port = port;
  return r;
}

/* The backend for a new flow of this client: its fresh affinity if that
 * backend is still in the service, else one picked by the flow's hash. */
static uint32_t choose(ks_worker_t *w, const ks_service_t *svc, const ks_packet_t *p,
                       const ks_fkey_t *fk, uint64_t now, ks_backend_t *be) {
  ks_akey_t ak;
  uint32_t ai;
  memset(&ak, 0, sizeof(ak));
  memcpy(ak.client, p->src.b, 16);
  ak.uid = svc->uid;
  if (kp_hash_find(&w->a_index, &ak, &ai)) {
    ks_aff_t *a = &w->a[ai];
    if (!aff_expired(a, now) && ks_service_has(svc, &a->be.addr, a->be.port)) {
      *be = a->be;
      a->timeout_ms = (uint64_t)svc->timeout_s * 1000;
      aff_touch(w, ai, now);
      w->stats.affinity_hits++;
      return ai;
    }
    aff_del(w, ai); /* stale or its backend left: pick afresh below */
  }
  uint64_t h = kp_hash_bytes(fk, sizeof(*fk), w->seed ^ 0x9e3779b97f4a7c15ULL);
  *be = svc->given[h % svc->n];
  w->stats.affinity_new++;
  if (w->n_aff == w->max) {
    /* full: the least recently seen entry goes (the new flow matters more) */
    aff_del(w, w->a_list.head);
    w->stats.affinity_evicted++;
  }
  ai = w->a_free;
  ks_aff_t *a = &w->a[ai];
  if (kp_hash_insert(&w->a_index, &ak, ai) != KS_OK) return NONE;
  w->a_free = a->next;
  a->key = ak;
  a->be = *be;
  a->used = 1;
  a->last_seen = now;
  a->timeout_ms = (uint64_t)svc->timeout_s * 1000;
  LIST_APPEND(w->a, &w->a_list, ai);
  w->n_aff++;
  return ai;
}

static int session_slot(ks_worker_t *w, uint64_t now) {
  if (w->n_sessions < w->max) return 1;
  for (int c = 0; c < N_CLS; c++) {
    uint32_t h = w->s_list[c].head;
    if (h != NONE && now >= w->s[h].expires) {
      session_del(w, h);
      w->stats.expired++;
      return 1;
    }
  }
  return 0;
}

ks_result_t ks_reverse(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now) {
  if (p->proto != 6 && p->proto != 17 && p->proto != 132) return result(KS_PASS, NULL, 0);
  ks_fkey_t fk;
  uint32_t val;
  fwd_key(&fk, p);
  fk.kind = KIND_REV;
  if (!kp_hash_find(&w->s_index, &fk, &val)) return result(KS_PASS, NULL, 0);
  uint32_t i = val >> 1;
  ks_session_t *s = &w->s[i];
  if (now >= s->expires) {
    session_del(w, i);
    w->stats.expired++;
    return result(KS_PASS, NULL, 0);
  }
  if (!session_valid(t, s)) {
    session_del(w, i);
    w->stats.stale++;
    return result(KS_PASS, NULL, 0);
  }
  session_refresh(w, i, now);
  session_touch_affinity(w, s, now);
  w->stats.reply_hits++;
  return result(KS_UNDNAT, s->key.dst, s->key.dport);
}

ks_result_t ks_forward(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now) {
  if (p->proto != 6 && p->proto != 17 && p->proto != 132) return result(KS_PASS, NULL, 0);
  uint32_t slot, val;
  const ks_service_t *svc = ks_service_of(t, &p->dst, p->proto, p->dport, &slot);
  if (!svc) return result(KS_PASS, NULL, 0);
  ks_fkey_t fk;
  fwd_key(&fk, p);
  if (kp_hash_find(&w->s_index, &fk, &val)) {
    uint32_t i = val >> 1;
    ks_session_t *s = &w->s[i];
    if (now >= s->expires) {
      session_del(w, i);
      w->stats.expired++;
    } else if (!session_valid(t, s)) {
      session_del(w, i);
      w->stats.stale++;
    } else {
      session_refresh(w, i, now);
      session_touch_affinity(w, s, now);
      w->stats.forward_hits++;
      return result(KS_DNAT, s->be.addr.b, s->be.port);
    }
  }
  if (svc->n == 0) {
    w->stats.no_backend++;
    return result(KS_DROP_NO_BACKEND, NULL, 0);
  }
  if (!session_slot(w, now)) {
    w->stats.table_full++;
    return result(KS_DROP_FULL, NULL, 0);
  }
  ks_backend_t be;
  uint32_t ai = choose(w, svc, p, &fk, now, &be);
  uint32_t i = w->s_free;
  ks_session_t *s = &w->s[i];
  ks_fkey_t rk;
  s->key = fk;
  s->be = be;
  rev_key(&rk, s);
  /* A reply key held by another session means two clients' flows would map
   * to one backend 5-tuple (same client IP and port to one backend through
   * two VIPs); the older one goes, as its replies are now ambiguous. */
  if (kp_hash_find(&w->s_index, &rk, &val)) {
    session_del(w, val >> 1);
    w->stats.stale++;
    i = w->s_free;
    s = &w->s[i];
    s->key = fk;
    s->be = be;
  }
  if (kp_hash_insert(&w->s_index, &fk, i * 2) != KS_OK) {
    w->stats.table_full++;
    return result(KS_DROP_FULL, NULL, 0);
  }
  if (kp_hash_insert(&w->s_index, &rk, i * 2 + 1) != KS_OK) {
    kp_hash_remove(&w->s_index, &fk);
    w->stats.table_full++;
    return result(KS_DROP_FULL, NULL, 0);
  }
  w->s_free = s->next;
  s->slot = slot;
  s->uid = svc->uid;
  s->gen = svc->gen;
  s->aff = ai;
  s->cls = (uint8_t)cls_of(p->proto);
  s->expires = now + w->timeout[s->cls];
  LIST_APPEND(w->s, &w->s_list[s->cls], i);
  w->n_sessions++;
  w->stats.sessions_created++;
  return result(KS_DNAT, be.addr.b, be.port);
}

ks_result_t ks_process(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now) {
  if (ks_service_of(t, &p->dst, p->proto, p->dport, NULL)) return ks_forward(t, w, p, now);
  return ks_reverse(t, w, p, now);
}
