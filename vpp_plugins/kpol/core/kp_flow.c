/*
 * Per-thread flow table: the stateful half of kp_process.
 *
 * Owns: a fixed pool of flows (bounded, allocated once), a hash index holding
 * two keys per flow (the forward key and the reverse key of the replies, so
 * a packet costs one lookup whichever way it goes), and one expiry-ordered
 * list per timeout class. Within a class every flow has the same timeout and
 * the caller's clock never goes back, so refreshing a flow moves it to the
 * tail and the head is always the next to expire: expiry and reclaiming a
 * slot when the table is full are O(1) per flow, with no scanning.
 *
 * When the table is full and nothing has expired, a packet that policy
 * allows but that would need a new flow is dropped with reason table-full
 * (counted), rather than admitted untracked: its replies could not pass
 * anyway, and existing flows keep working.
 */
#include <stdlib.h>
#include <string.h>

#include "kp_internal.h"

#define NONE UINT32_MAX
enum { CLS_TCP, CLS_UDP, CLS_OTHER, N_CLS };

typedef struct {
  uint8_t src[16], dst[16];
  uint32_t sw_if;
  uint16_t sport, dport;
  uint8_t proto, dir;
  uint8_t pad[2];
} kp_fkey_t;

typedef struct {
  kp_fkey_t key; /* forward key */
  uint64_t expires;
  uint64_t gen;
  uint32_t prev, next; /* class list, or free list (next) */
  int32_t rule;
  uint8_t reason, cls;
} kp_flow_t;

struct kp_worker {
  uint32_t thread, max_flows, n_flows;
  uint64_t timeout[N_CLS];
  kp_flow_t *flows;
  uint32_t free_head;
  uint32_t head[N_CLS], tail[N_CLS];
  kp_hash_t index; /* key -> flow index * 2 + is_reply */
  kp_worker_stats_t stats;
};

static void reset_pool(kp_worker_t *w) {
  for (uint32_t i = 0; i < w->max_flows; i++) w->flows[i].next = i + 1 < w->max_flows ? i + 1 : NONE;
  w->free_head = w->max_flows ? 0 : NONE;
  for (int c = 0; c < N_CLS; c++) w->head[c] = w->tail[c] = NONE;
  w->n_flows = 0;
}

kp_worker_t *kp_worker_new(uint32_t thread_index, uint32_t max_flows, const kp_timeouts_t *to,
                           uint64_t hash_seed) {
  if (thread_index >= KP_MAX_THREADS || max_flows == 0 || max_flows > (1u << 28) || !to)
    return NULL;
  kp_worker_t *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  w->thread = thread_index;
  w->max_flows = max_flows;
  w->timeout[CLS_TCP] = to->tcp;
  w->timeout[CLS_UDP] = to->udp;
  w->timeout[CLS_OTHER] = to->other;
  w->flows = malloc((size_t)max_flows * sizeof(kp_flow_t));
  if (!w->flows ||
      kp_hash_init(&w->index, sizeof(kp_fkey_t), 2 * max_flows, 2 * max_flows, hash_seed)) {
    free(w->flows);
    free(w);
    return NULL;
  }
  reset_pool(w);
  return w;
}

void kp_worker_free(kp_worker_t *w) {
  if (!w) return;
  kp_hash_free(&w->index);
  free(w->flows);
  free(w);
}

void kp_worker_flush(kp_worker_t *w) {
  kp_hash_clear(&w->index);
  reset_pool(w);
}

uint32_t kp_worker_n_flows(const kp_worker_t *w) { return w->n_flows; }
const kp_worker_stats_t *kp_worker_stats(const kp_worker_t *w) { return &w->stats; }

static inline void make_key(kp_fkey_t *k, uint32_t sw_if, kp_dir_t dir, const kp_packet_t *p,
                            int reverse) {
  memset(k, 0, sizeof(*k));
  memcpy(k->src, reverse ? p->dst.b : p->src.b, 16);
  memcpy(k->dst, reverse ? p->src.b : p->dst.b, 16);
  k->sport = reverse ? p->dport : p->sport;
  k->dport = reverse ? p->sport : p->dport;
  k->proto = p->proto;
  k->sw_if = sw_if;
  k->dir = (uint8_t)(reverse ? !dir : dir);
}

static inline int cls_of(uint8_t proto) {
  return proto == 6 ? CLS_TCP : proto == 17 ? CLS_UDP : CLS_OTHER;
}

static void list_unlink(kp_worker_t *w, uint32_t i) {
  kp_flow_t *f = &w->flows[i];
  if (f->prev != NONE) w->flows[f->prev].next = f->next; else w->head[f->cls] = f->next;
  if (f->next != NONE) w->flows[f->next].prev = f->prev; else w->tail[f->cls] = f->prev;
}

static void list_append(kp_worker_t *w, uint32_t i) {
  kp_flow_t *f = &w->flows[i];
  f->next = NONE;
  f->prev = w->tail[f->cls];
  if (f->prev != NONE) w->flows[f->prev].next = i; else w->head[f->cls] = i;
  w->tail[f->cls] = i;
}

static void refresh(kp_worker_t *w, uint32_t i, uint64_t now) {
  w->flows[i].expires = now + w->timeout[w->flows[i].cls];
  if (w->tail[w->flows[i].cls] != i) {
    list_unlink(w, i);
    list_append(w, i);
  }
}

static void flow_del(kp_worker_t *w, uint32_t i) {
  kp_flow_t *f = &w->flows[i];
  kp_fkey_t rk = f->key;
  memcpy(rk.src, f->key.dst, 16);
  memcpy(rk.dst, f->key.src, 16);
  rk.sport = f->key.dport;
  rk.dport = f->key.sport;
  rk.dir = (uint8_t)!f->key.dir;
  kp_hash_remove(&w->index, &f->key);
  kp_hash_remove(&w->index, &rk);
  list_unlink(w, i);
  f->next = w->free_head;
  w->free_head = i;
  w->n_flows--;
}

uint32_t kp_worker_expire(kp_worker_t *w, uint64_t now, uint32_t budget) {
  uint32_t n = 0;
  for (int c = 0; c < N_CLS; c++) {
    while (n < budget && w->head[c] != NONE && now >= w->flows[w->head[c]].expires) {
      flow_del(w, w->head[c]);
      n++;
    }
  }
  w->stats.expired += n;
  return n;
}

static int flow_new(kp_worker_t *w, uint32_t sw_if, kp_dir_t dir, const kp_packet_t *p,
                    const kp_verdict_t *v, uint64_t gen, uint64_t now) {
  if (w->n_flows == w->max_flows) {
    /* the heads hold the earliest expiry of each class */
    for (int c = 0; c < N_CLS; c++) {
      if (w->head[c] != NONE && now >= w->flows[w->head[c]].expires) {
        flow_del(w, w->head[c]);
        w->stats.expired++;
        break;
      }
    }
    if (w->n_flows == w->max_flows) return KP_E_NOMEM;
  }
  uint32_t i = w->free_head;
  kp_flow_t *f = &w->flows[i];
  kp_fkey_t rk;
  make_key(&f->key, sw_if, dir, p, 0);
  make_key(&rk, sw_if, dir, p, 1);
  /* Both keys are absent here: a flow owns both of its keys, and a miss on
   * the forward key means no flow owns the pair. */
  if (kp_hash_insert(&w->index, &f->key, i * 2) != KP_OK) return KP_E_NOMEM;
  if (kp_hash_insert(&w->index, &rk, i * 2 + 1) != KP_OK) {
    kp_hash_remove(&w->index, &f->key);
    return KP_E_NOMEM;
  }
  w->free_head = f->next;
  f->cls = (uint8_t)cls_of(p->proto);
  f->gen = gen;
  f->rule = v->rule;
  f->reason = v->reason;
  f->expires = now + w->timeout[f->cls];
  list_append(w, i);
  w->n_flows++;
  w->stats.flows_created++;
  return KP_OK;
}

kp_verdict_t kp_process(const kp_tables_t *t, kp_worker_t *w, uint32_t sw_if, kp_dir_t dir,
                        const kp_packet_t *p, uint64_t now) {
  kp_verdict_t v = {.allowed = 1, .reason = KP_REASON_NOT_ISOLATED, .rule = -1};
  const kp_policy_t *pol = kp_policy_of_if(t, sw_if);
  if (!pol || (!pol->dir[KP_INGRESS] && !pol->dir[KP_EGRESS])) return v; /* nothing to track */
  dir = dir == KP_INGRESS ? KP_INGRESS : KP_EGRESS;
  const kp_dirpol_t *d = pol->dir[dir];

  kp_fkey_t key;
  uint32_t val;
  make_key(&key, sw_if, dir, p, 0);
  if (kp_hash_find(&w->index, &key, &val)) {
    uint32_t i = val >> 1;
    kp_flow_t *f = &w->flows[i];
    if (now >= f->expires) {
      flow_del(w, i);
      w->stats.expired++;
    } else if (val & 1) {
      refresh(w, i, now);
      w->stats.reply_hits++;
      return (kp_verdict_t){.allowed = 1, .reason = KP_REASON_REPLY, .flow_hit = 1, .rule = -1};
    } else if (f->gen == t->gen) {
      refresh(w, i, now);
      w->stats.flow_hits++;
      if (d) kp_count(d, w->thread, f->rule);
      return (kp_verdict_t){.allowed = 1, .reason = f->reason, .flow_hit = 1, .rule = f->rule};
    } else {
      /* the tables changed since this flow was admitted: ask again once */
      w->stats.reevaluated++;
      v = kp_eval_dir(d, dir, p);
      if (d) kp_count(d, w->thread, v.rule);
      if (!v.allowed) {
        flow_del(w, i);
        return v;
      }
      f->gen = t->gen;
      f->rule = v.rule;
      f->reason = v.reason;
      refresh(w, i, now);
      return v;
    }
  }
  v = kp_eval_dir(d, dir, p);
  if (!v.allowed) {
    kp_count(d, w->thread, -1);
    return v;
  }
  if (flow_new(w, sw_if, dir, p, &v, t->gen, now) != KP_OK) {
    w->stats.table_full++;
    return (kp_verdict_t){.allowed = 0, .reason = KP_REASON_TABLE_FULL, .rule = -1};
  }
  if (d) kp_count(d, w->thread, v.rule);
  return v;
}
