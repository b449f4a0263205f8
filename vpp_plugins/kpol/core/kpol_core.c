/*
 * kpol tables: sets, policies, attachments and stateless evaluation.
 * See kpol_core.h for the model and the threading rules.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "kp_internal.h"

const char *kp_strerror(int err) {
  switch (err) {
  case KP_OK: return "ok";
  case KP_E_INVAL: return "invalid argument";
  case KP_E_NOENT: return "no such object";
  case KP_E_EXISTS: return "already exists";
  case KP_E_BUSY: return "in use";
  case KP_E_NOMEM: return "out of memory";
  case KP_E_RANGE: return "out of range";
  case KP_E_KIND: return "wrong set kind";
  default: return "unknown error";
  }
}

const char *kp_reason_name(kp_reason_t r) {
  switch (r) {
  case KP_REASON_RULE: return "rule";
  case KP_REASON_DEFAULT_DENY: return "default-deny";
  case KP_REASON_NOT_ISOLATED: return "not-isolated";
  case KP_REASON_REPLY: return "reply";
  case KP_REASON_TABLE_FULL: return "table-full";
  }
  return "?";
}

/* ---- addresses ---- */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void kp_addr_from_v4(kp_addr_t *a, const uint8_t v4[4]) {
  memcpy(a->b, v4_mapped_prefix, 12);
  memcpy(a->b + 12, v4, 4);
}

void kp_addr_from_v6(kp_addr_t *a, const uint8_t v6[16]) { memcpy(a->b, v6, 16); }

int kp_addr_is_v4(const kp_addr_t *a) { return memcmp(a->b, v4_mapped_prefix, 12) == 0; }

int kp_addr_parse(kp_addr_t *a, const char *s) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, s, buf) == 1) {
    kp_addr_from_v4(a, buf);
    return 0;
  }
  if (inet_pton(AF_INET6, s, buf) == 1) {
    kp_addr_from_v6(a, buf);
    return 0;
  }
  return KP_E_INVAL;
}

/* ---- growable id-indexed arrays ---- */

static int ensure_cap(void **arr, uint32_t *cap, uint32_t idx, size_t elt) {
  if (idx < *cap) return KP_OK;
  uint32_t ncap = *cap ? *cap : 16;
  while (ncap <= idx) ncap *= 2;
  void *n = realloc(*arr, (size_t)ncap * elt);
  if (!n) return KP_E_NOMEM;
  memset((char *)n + (size_t)*cap * elt, 0, (size_t)(ncap - *cap) * elt);
  *arr = n;
  *cap = ncap;
  return KP_OK;
}

/* ---- tables ---- */

kp_tables_t *kp_tables_new(uint32_t n_threads, uint64_t hash_seed) {
  if (n_threads == 0 || n_threads > KP_MAX_THREADS) return NULL;
  kp_tables_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->n_threads = n_threads;
  t->seed = hash_seed;
  return t;
}

static void set_free(kp_set_t *s) {
  if (!s) return;
  if (s->kind == KP_SET_NET)
    kp_lpm_free(&s->lpm);
  else
    kp_hash_free(&s->h);
  free(s);
}

static void dirpol_free(kp_dirpol_t *d) {
  if (!d) return;
  for (uint32_t i = 0; i < d->n_rules; i++) {
    kp_rule_t *r = &d->rules[i];
    for (uint32_t k = 0; k < r->n_peers; k++) r->peers[k]->refs--;
    for (uint32_t k = 0; k < r->n_pp; k++) r->pp[k]->refs--;
    free(r->peers);
    free(r->ports);
    free(r->pp);
    free(r->peer_ids);
    free(r->pp_ids);
  }
  free(d->rules);
  free(d->ctr);
  free(d);
}

static void policy_free(kp_policy_t *p) {
  if (!p) return;
  dirpol_free(p->dir[0]);
  dirpol_free(p->dir[1]);
  free(p);
}

void kp_tables_free(kp_tables_t *t) {
  if (!t) return;
  for (uint32_t i = 0; i < t->pols_cap; i++) policy_free(t->pols[i]);
  for (uint32_t i = 0; i < t->sets_cap; i++) set_free(t->sets[i]);
  free(t->pols);
  free(t->sets);
  free(t->attach);
  free(t);
}

/* ---- sets ---- */

static kp_set_t *set_get(const kp_tables_t *t, uint32_t id) {
  return id < t->sets_cap ? t->sets[id] : NULL;
}

int kp_set_add(kp_tables_t *t, uint32_t id, kp_set_kind_t kind) {
  if (id >= KP_MAX_SET_ID) return KP_E_RANGE;
  if (kind != KP_SET_ADDR && kind != KP_SET_NET && kind != KP_SET_ADDR_PORT) return KP_E_INVAL;
  if (set_get(t, id)) return KP_E_EXISTS;
  if (ensure_cap((void **)&t->sets, &t->sets_cap, id, sizeof(*t->sets))) return KP_E_NOMEM;
  kp_set_t *s = calloc(1, sizeof(*s));
  if (!s) return KP_E_NOMEM;
  s->id = id;
  s->kind = kind;
  /* one seed for every set, so evaluation hashes a packet's peer once */
  int rv = kind == KP_SET_NET ? kp_lpm_init(&s->lpm)
                              : kp_hash_init(&s->h, sizeof(kp_mkey_t), 8, 0, t->seed);
  if (rv) {
    free(s);
    return rv;
  }
  t->sets[id] = s;
  return KP_OK;
}

int kp_set_del(kp_tables_t *t, uint32_t id) {
  kp_set_t *s = set_get(t, id);
  if (!s) return id >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
  if (s->refs) return KP_E_BUSY;
  t->sets[id] = NULL;
  set_free(s);
  t->gen++;
  return KP_OK;
}

int kp_set_kind(const kp_tables_t *t, uint32_t id) {
  kp_set_t *s = set_get(t, id);
  return s ? (int)s->kind : KP_E_NOENT;
}

uint32_t kp_set_size(const kp_tables_t *t, uint32_t id) {
  kp_set_t *s = set_get(t, id);
  if (!s) return 0;
  return s->kind == KP_SET_NET ? s->lpm.n_prefixes : s->h.count;
}

static void mkey(kp_mkey_t *k, const kp_addr_t *a, uint8_t proto, uint16_t port) {
  memcpy(k->a, a->b, 16);
  k->port = port;
  k->proto = proto;
  k->pad = 0;
}

int kp_set_member_add(kp_tables_t *t, uint32_t id, const kp_member_t *m) {
  kp_set_t *s = set_get(t, id);
  if (!s) return id >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
  kp_mkey_t k;
  switch (s->kind) {
  case KP_SET_NET: {
    int rv = kp_lpm_add(&s->lpm, &m->addr, m->plen, m->exclude ? KP_LPM_EXCLUDE : KP_LPM_INCLUDE);
    /* Adds only grant, so cached flows stay valid; but an except carves addresses out of the
     * set: flows it now denies must be evaluated again (found by libFuzzer). */
    if (rv == KP_OK && m->exclude) t->gen++;
    return rv;
  }
  case KP_SET_ADDR:
    mkey(&k, &m->addr, 0, 0);
    return kp_hash_insert(&s->h, &k, 0);
  case KP_SET_ADDR_PORT:
    mkey(&k, &m->addr, m->proto, m->port);
    return kp_hash_insert(&s->h, &k, 0);
  }
  return KP_E_INVAL;
}

static int member_del(kp_tables_t *t, uint32_t id, const kp_member_t *m, int bump) {
  kp_set_t *s = set_get(t, id);
  if (!s) return id >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
  kp_mkey_t k;
  int rv = KP_E_INVAL;
  switch (s->kind) {
  case KP_SET_NET:
    rv = kp_lpm_del(&s->lpm, &m->addr, m->plen, m->exclude ? KP_LPM_EXCLUDE : KP_LPM_INCLUDE);
    break;
  case KP_SET_ADDR:
    mkey(&k, &m->addr, 0, 0);
    rv = kp_hash_remove(&s->h, &k);
    break;
  case KP_SET_ADDR_PORT:
    mkey(&k, &m->addr, m->proto, m->port);
    rv = kp_hash_remove(&s->h, &k);
    break;
  }
  if (rv == KP_OK && bump) t->gen++;
  return rv;
}

int kp_set_member_del(kp_tables_t *t, uint32_t id, const kp_member_t *m) {
  return member_del(t, id, m, 1);
}

/* Malformed members fail a batch before any member is applied, so the
 * error a batch reports does not depend on the order of its members. */
static int batch_check(const kp_tables_t *t, uint32_t id, const kp_member_t *m, uint32_t n,
                       uint32_t *failed_at) {
  kp_set_t *s = set_get(t, id);
  if (!s) return id >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
  if (n && !m) return KP_E_INVAL;
  if (s->kind != KP_SET_NET) return KP_OK;
  for (uint32_t i = 0; i < n; i++) {
    if (kp_lpm_prefix_valid(&m[i].addr, m[i].plen) != KP_OK) {
      if (failed_at) *failed_at = i;
      return KP_E_INVAL;
    }
  }
  return KP_OK;
}

int kp_set_members_add(kp_tables_t *t, uint32_t id, const kp_member_t *m, uint32_t n,
                       uint32_t *failed_at) {
  int rv = batch_check(t, id, m, n, failed_at);
  if (rv) return rv;
  for (uint32_t i = 0; i < n; i++) {
    int rv = kp_set_member_add(t, id, &m[i]);
    if (rv) {
      if (failed_at) *failed_at = i;
      while (i--) member_del(t, id, &m[i], 0);
      return rv;
    }
  }
  return KP_OK;
}

int kp_set_members_del(kp_tables_t *t, uint32_t id, const kp_member_t *m, uint32_t n,
                       uint32_t *failed_at) {
  int rv = batch_check(t, id, m, n, failed_at);
  if (rv) return rv;
  for (uint32_t i = 0; i < n; i++) {
    int rv = member_del(t, id, &m[i], 0);
    if (rv) {
      uint32_t bad = i;
      /* Undo in reverse order restores the exact prior state without any
       * allocation: the hash never shrinks, and the trie nodes just pruned
       * sit on its free list. */
      while (i--) kp_set_member_add(t, id, &m[i]);
      if (failed_at) *failed_at = bad;
      return rv;
    }
  }
  if (n) t->gen++;
  return KP_OK;
}

static inline int set_has(const kp_set_t *s, const kp_addr_t *a, uint8_t proto, uint16_t port) {
  kp_mkey_t k;
  switch (s->kind) {
  case KP_SET_NET: return kp_lpm_member(&s->lpm, a);
  case KP_SET_ADDR: mkey(&k, a, 0, 0); return kp_hash_find(&s->h, &k, NULL);
  case KP_SET_ADDR_PORT: mkey(&k, a, proto, port); return kp_hash_find(&s->h, &k, NULL);
  }
  return 0;
}

int kp_set_contains(const kp_tables_t *t, uint32_t id, const kp_addr_t *a, uint8_t proto,
                    uint16_t port) {
  kp_set_t *s = set_get(t, id);
  if (!s) return KP_E_NOENT;
  return set_has(s, a, proto, port);
}

typedef struct {
  kp_member_fn fn;
  void *ctx;
} walk_ctx_t;

static int lpm_walk_cb(const kp_addr_t *a, uint8_t plen, uint8_t mark, void *c) {
  walk_ctx_t *w = c;
  kp_member_t m = {.addr = *a, .plen = plen, .exclude = mark == KP_LPM_EXCLUDE};
  return w->fn(&m, w->ctx);
}

int kp_set_walk(const kp_tables_t *t, uint32_t id, kp_member_fn fn, void *ctx) {
  kp_set_t *s = set_get(t, id);
  if (!s) return KP_E_NOENT;
  if (s->kind == KP_SET_NET) {
    walk_ctx_t w = {fn, ctx};
    kp_lpm_walk(&s->lpm, lpm_walk_cb, &w);
    return KP_OK;
  }
  for (uint32_t i = 0; i < s->h.cap; i++) {
    if (!kp_hash_used(&s->h, i)) continue;
    const kp_mkey_t *k = kp_hash_key_at(&s->h, i);
    kp_member_t m = {.proto = k->proto, .port = k->port};
    memcpy(m.addr.b, k->a, 16);
    m.plen = kp_addr_is_v4(&m.addr) ? 32 : 128;
    if (fn(&m, ctx)) break;
  }
  return KP_OK;
}

/* ---- policies ---- */

static kp_policy_t *pol_get(const kp_tables_t *t, uint32_t id) {
  return id < t->pols_cap ? t->pols[id] : NULL;
}

/* Checks a rule spec and resolves its set ids without taking references. */
static int rule_check(const kp_tables_t *t, const kp_rule_spec_t *rs) {
  if (rs->any_peer > 1) return KP_E_INVAL;
  if (rs->n_peers > KP_MAX_RULE_REFS || rs->n_ports > KP_MAX_RULE_REFS ||
      rs->n_peer_ports > KP_MAX_RULE_REFS)
    return KP_E_RANGE;
  if ((rs->n_peers && !rs->peers) || (rs->n_ports && !rs->ports) ||
      (rs->n_peer_ports && !rs->peer_ports))
    return KP_E_INVAL;
  if (rs->any_peer && rs->n_peers) return KP_E_INVAL; /* "any" and a list contradict */
  for (uint32_t k = 0; k < rs->n_peers; k++) {
    kp_set_t *s = set_get(t, rs->peers[k]);
    if (!s) return rs->peers[k] >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
    if (s->kind == KP_SET_ADDR_PORT) return KP_E_KIND;
  }
  for (uint32_t k = 0; k < rs->n_peer_ports; k++) {
    kp_set_t *s = set_get(t, rs->peer_ports[k]);
    if (!s) return rs->peer_ports[k] >= KP_MAX_SET_ID ? KP_E_RANGE : KP_E_NOENT;
    if (s->kind != KP_SET_ADDR_PORT) return KP_E_KIND;
  }
  for (uint32_t k = 0; k < rs->n_ports; k++)
    if (rs->ports[k].lo > rs->ports[k].hi) return KP_E_INVAL;
  return KP_OK;
}

static kp_dirpol_t *dirpol_build(kp_tables_t *t, const kp_dir_spec_t *ds) {
  kp_dirpol_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  d->seed = t->seed;
  d->stride = (ds->n_rules + 1 + 7) & ~7u;
  d->ctr = calloc((size_t)t->n_threads * d->stride, sizeof(uint64_t));
  d->rules = ds->n_rules ? calloc(ds->n_rules, sizeof(kp_rule_t)) : NULL;
  if (!d->ctr || (ds->n_rules && !d->rules)) goto fail;
  for (uint32_t i = 0; i < ds->n_rules; i++, d->n_rules++) {
    const kp_rule_spec_t *rs = &ds->rules[i];
    kp_rule_t *r = &d->rules[i];
    r->any_peer = rs->any_peer;
    if (rs->n_peers && (!(r->peers = malloc(rs->n_peers * sizeof(*r->peers))) ||
                        !(r->peer_ids = malloc(rs->n_peers * sizeof(uint32_t)))))
      goto fail;
    if (rs->n_ports && !(r->ports = malloc(rs->n_ports * sizeof(*r->ports)))) goto fail;
    if (rs->n_peer_ports && (!(r->pp = malloc(rs->n_peer_ports * sizeof(*r->pp))) ||
                             !(r->pp_ids = malloc(rs->n_peer_ports * sizeof(uint32_t)))))
      goto fail;
    if (rs->n_peers) memcpy(r->peer_ids, rs->peers, rs->n_peers * sizeof(uint32_t));
    if (rs->n_peer_ports) memcpy(r->pp_ids, rs->peer_ports, rs->n_peer_ports * sizeof(uint32_t));
    for (; r->n_peers < rs->n_peers; r->n_peers++) {
      r->peers[r->n_peers] = t->sets[rs->peers[r->n_peers]];
      r->peers[r->n_peers]->refs++;
    }
    for (; r->n_pp < rs->n_peer_ports; r->n_pp++) {
      r->pp[r->n_pp] = t->sets[rs->peer_ports[r->n_pp]];
      r->pp[r->n_pp]->refs++;
    }
    r->n_ports = rs->n_ports;
    if (rs->n_ports) memcpy(r->ports, rs->ports, rs->n_ports * sizeof(*r->ports));
  }
  return d;
fail:
  /* rule i may be half-built; count it so its references are released */
  if (d->rules && d->n_rules < ds->n_rules) d->n_rules++;
  dirpol_free(d);
  return NULL;
}

int kp_policy_set(kp_tables_t *t, uint32_t id, const kp_dir_spec_t *const dirs[2]) {
  if (id >= KP_MAX_POLICY_ID) return KP_E_RANGE;
  for (int dir = 0; dir < 2; dir++) {
    const kp_dir_spec_t *ds = dirs[dir];
    if (!ds) continue;
    if (ds->n_rules > KP_MAX_RULES) return KP_E_RANGE;
    if (ds->n_rules && !ds->rules) return KP_E_INVAL;
    for (uint32_t i = 0; i < ds->n_rules; i++) {
      int rv = rule_check(t, &ds->rules[i]);
      if (rv) return rv;
    }
  }
  if (ensure_cap((void **)&t->pols, &t->pols_cap, id, sizeof(*t->pols))) return KP_E_NOMEM;
  kp_policy_t *p = calloc(1, sizeof(*p));
  if (!p) return KP_E_NOMEM;
  for (int dir = 0; dir < 2; dir++) {
    if (!dirs[dir]) continue;
    if (!(p->dir[dir] = dirpol_build(t, dirs[dir]))) {
      policy_free(p);
      return KP_E_NOMEM;
    }
  }
  kp_policy_t *old = t->pols[id];
  if (old) p->attached = old->attached;
  t->pols[id] = p;
  policy_free(old);
  t->gen++;
  return KP_OK;
}

int kp_policy_del(kp_tables_t *t, uint32_t id) {
  kp_policy_t *p = pol_get(t, id);
  if (!p) return id >= KP_MAX_POLICY_ID ? KP_E_RANGE : KP_E_NOENT;
  if (p->attached) return KP_E_BUSY;
  t->pols[id] = NULL;
  policy_free(p);
  t->gen++;
  return KP_OK;
}

int kp_policy_n_rules(const kp_tables_t *t, uint32_t id, kp_dir_t dir) {
  kp_policy_t *p = pol_get(t, id);
  if (!p || (dir != KP_INGRESS && dir != KP_EGRESS)) return KP_E_NOENT;
  return p->dir[dir] ? (int)p->dir[dir]->n_rules : -1;
}

int kp_policy_rule(const kp_tables_t *t, uint32_t id, kp_dir_t dir, uint32_t i,
                   kp_rule_spec_t *out) {
  kp_policy_t *p = pol_get(t, id);
  if (!p || (dir != KP_INGRESS && dir != KP_EGRESS) || !p->dir[dir]) return KP_E_NOENT;
  if (i >= p->dir[dir]->n_rules) return KP_E_RANGE;
  const kp_rule_t *r = &p->dir[dir]->rules[i];
  *out = (kp_rule_spec_t){.any_peer = r->any_peer, .n_peers = r->n_peers, .peers = r->peer_ids,
                          .n_ports = r->n_ports, .ports = r->ports, .n_peer_ports = r->n_pp,
                          .peer_ports = r->pp_ids};
  return KP_OK;
}

uint32_t kp_set_max_id(const kp_tables_t *t) { return t->sets_cap; }
uint32_t kp_policy_max_id(const kp_tables_t *t) { return t->pols_cap; }
uint32_t kp_attach_max_sw_if(const kp_tables_t *t) { return t->attach_cap; }

int kp_policy_counters(const kp_tables_t *t, uint32_t id, kp_dir_t dir, uint64_t *out,
                       uint32_t n) {
  kp_policy_t *p = pol_get(t, id);
  if (!p || (dir != KP_INGRESS && dir != KP_EGRESS) || !p->dir[dir]) return KP_E_NOENT;
  const kp_dirpol_t *d = p->dir[dir];
  if (n > d->n_rules + 1) n = d->n_rules + 1;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t sum = 0;
    for (uint32_t th = 0; th < t->n_threads; th++) sum += d->ctr[(size_t)th * d->stride + i];
    out[i] = sum;
  }
  return (int)n;
}

/* ---- attachments ---- */

int kp_attach(kp_tables_t *t, uint32_t sw_if, uint32_t policy_id) {
  if (sw_if >= KP_MAX_SW_IF || policy_id >= KP_MAX_POLICY_ID) return KP_E_RANGE;
  kp_policy_t *p = pol_get(t, policy_id);
  if (!p) return KP_E_NOENT;
  if (ensure_cap((void **)&t->attach, &t->attach_cap, sw_if, sizeof(*t->attach)))
    return KP_E_NOMEM;
  uint32_t cur = t->attach[sw_if];
  if (cur == policy_id + 1) return KP_OK;
  if (cur) t->pols[cur - 1]->attached--;
  t->attach[sw_if] = policy_id + 1;
  p->attached++;
  t->gen++;
  return KP_OK;
}

int kp_detach(kp_tables_t *t, uint32_t sw_if) {
  if (sw_if >= KP_MAX_SW_IF) return KP_E_RANGE;
  if (sw_if >= t->attach_cap || !t->attach[sw_if]) return KP_E_NOENT;
  t->pols[t->attach[sw_if] - 1]->attached--;
  t->attach[sw_if] = 0;
  t->gen++;
  return KP_OK;
}

int64_t kp_attached(const kp_tables_t *t, uint32_t sw_if) {
  if (sw_if >= t->attach_cap || !t->attach[sw_if]) return KP_E_NOENT;
  return (int64_t)t->attach[sw_if] - 1;
}

/* ---- evaluation ---- */

/* A packet's peer keys, hashed at most once per evaluation. */
typedef struct {
  kp_mkey_t addr, addr_port;
  uint64_t hv_addr, hv_addr_port; /* 0 = not computed yet */
  const kp_addr_t *peer;
  uint64_t seed;
} peer_keys_t;

static inline int peer_in(const kp_set_t *s, peer_keys_t *k) {
  switch (s->kind) {
  case KP_SET_NET: return kp_lpm_member(&s->lpm, k->peer);
  case KP_SET_ADDR:
    if (!k->hv_addr) k->hv_addr = kp_hash_bytes(&k->addr, sizeof(k->addr), k->seed);
    return kp_hash_find_hv(&s->h, &k->addr, k->hv_addr, NULL);
  case KP_SET_ADDR_PORT:
    if (!k->hv_addr_port) k->hv_addr_port = kp_hash_bytes(&k->addr_port, sizeof(k->addr_port), k->seed);
    return kp_hash_find_hv(&s->h, &k->addr_port, k->hv_addr_port, NULL);
  }
  return 0;
}

static inline int rule_match(const kp_rule_t *r, peer_keys_t *k, uint8_t proto, uint16_t port) {
  /* ports first: a few integer compares reject most rules before any hash */
  int port_ok = r->n_ports == 0;
  for (uint32_t i = 0; i < r->n_ports && !port_ok; i++) {
    const kp_port_range_t *pr = &r->ports[i];
    port_ok = (pr->proto == 0 || pr->proto == proto) && pr->lo <= port && port <= pr->hi;
  }
  if (port_ok) {
    if (r->any_peer) return 1;
    for (uint32_t i = 0; i < r->n_peers; i++)
      if (peer_in(r->peers[i], k)) return 1;
  }
  for (uint32_t i = 0; i < r->n_pp; i++)
    if (peer_in(r->pp[i], k)) return 1;
  return 0;
}

kp_verdict_t kp_eval_dir(const kp_dirpol_t *d, kp_dir_t dir, const kp_packet_t *p) {
  kp_verdict_t v = {.allowed = 1, .reason = KP_REASON_NOT_ISOLATED, .rule = -1};
  if (!d) return v;
  peer_keys_t k;
  k.peer = dir == KP_INGRESS ? &p->src : &p->dst;
  k.seed = d->seed;
  k.hv_addr = k.hv_addr_port = 0;
  mkey(&k.addr, k.peer, 0, 0);
  mkey(&k.addr_port, k.peer, p->proto, p->dport);
  for (uint32_t i = 0; i < d->n_rules; i++) {
    if (rule_match(&d->rules[i], &k, p->proto, p->dport)) {
      v.reason = KP_REASON_RULE;
      v.rule = (int32_t)i;
      return v;
    }
  }
  v.allowed = 0;
  v.reason = KP_REASON_DEFAULT_DENY;
  return v;
}

kp_verdict_t kp_evaluate(const kp_tables_t *t, uint32_t policy_id, kp_dir_t dir,
                         const kp_packet_t *p) {
  kp_policy_t *pol = pol_get(t, policy_id);
  if (!pol || (dir != KP_INGRESS && dir != KP_EGRESS))
    return (kp_verdict_t){.allowed = 1, .reason = KP_REASON_NOT_ISOLATED, .rule = -1};
  return kp_eval_dir(pol->dir[dir], dir, p);
}
