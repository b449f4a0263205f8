/* The service table; see ksvc_core.h. */
#include <stdlib.h>
#include <string.h>

#include "ks_internal.h"

static const uint8_t V4_PREFIX[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void ks_addr_from_v4(ks_addr_t *a, const uint8_t v4[4]) {
  memcpy(a->b, V4_PREFIX, 12);
  memcpy(a->b + 12, v4, 4);
}

void ks_addr_from_v6(ks_addr_t *a, const uint8_t v6[16]) { memcpy(a->b, v6, 16); }

int ks_addr_is_v4(const ks_addr_t *a) { return memcmp(a->b, V4_PREFIX, 12) == 0; }

static int addr_is_zero(const ks_addr_t *a) {
  static const uint8_t z[16];
  if (ks_addr_is_v4(a)) return memcmp(a->b + 12, z, 4) == 0;
  return memcmp(a->b, z, 16) == 0;
}

ks_tables_t *ks_tables_new(uint64_t seed) {
  ks_tables_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->seed = seed;
  t->svc = calloc(KS_MAX_SERVICES, sizeof(*t->svc));
  if (!t->svc || kp_hash_init(&t->index, sizeof(ks_skey_t), 64, KS_MAX_SERVICES, seed)) {
    free(t->svc);
    free(t);
    return NULL;
  }
  return t;
}

static void service_free(ks_service_t *s) {
  if (!s) return;
  free(s->given);
  free(s->sorted);
  free(s);
}

void ks_tables_free(ks_tables_t *t) {
  if (!t) return;
  for (uint32_t i = 0; i < KS_MAX_SERVICES; i++) service_free(t->svc[i]);
  free(t->svc);
  kp_hash_free(&t->index);
  free(t);
}

int ks_backend_cmp(const ks_backend_t *a, const ks_backend_t *b) {
  int c = memcmp(a->addr.b, b->addr.b, 16);
  if (c) return c;
  return (int)a->port - (int)b->port;
}

static int cmp_qsort(const void *a, const void *b) { return ks_backend_cmp(a, b); }

int ks_service_has(const ks_service_t *s, const ks_addr_t *a, uint16_t port) {
  ks_backend_t k;
  memset(&k, 0, sizeof(k));
  k.addr = *a;
  k.port = port;
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = ks_backend_cmp(&s->sorted[mid], &k);
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return 0;
}

static void make_skey(ks_skey_t *k, const ks_addr_t *vip, uint8_t proto, uint16_t port) {
  memset(k, 0, sizeof(*k));
  memcpy(k->vip, vip->b, 16);
  k->proto = proto;
  k->port = port;
}

const ks_service_t *ks_service_of(const ks_tables_t *t, const ks_addr_t *dst, uint8_t proto,
                                  uint16_t port, uint32_t *slot) {
  ks_skey_t k;
  uint32_t v;
  make_skey(&k, dst, proto, port);
  if (!kp_hash_find(&t->index, &k, &v)) return NULL;
  if (slot) *slot = v;
  return t->svc[v];
}

static int valid_proto(uint8_t p) { return p == 6 || p == 17 || p == 132; }

/* Everything that can be wrong with a spec, before anything is allocated. */
static int validate(const ks_service_spec_t *s, ks_backend_t *sorted, uint32_t *bad) {
  *bad = UINT32_MAX;
  if (!valid_proto(s->proto) || s->port == 0 || addr_is_zero(&s->vip)) return KS_E_INVAL;
  if (s->timeout_s == 0 || s->timeout_s > KS_MAX_TIMEOUT_S) return KS_E_INVAL;
  if (s->n_backends > KS_MAX_BACKENDS) return KS_E_RANGE;
  if (s->n_backends && !s->backends) return KS_E_INVAL;
  int v4 = ks_addr_is_v4(&s->vip);
  for (uint32_t i = 0; i < s->n_backends; i++) {
    const ks_backend_t *b = &s->backends[i];
    if (b->port == 0 || ks_addr_is_v4(&b->addr) != v4 || addr_is_zero(&b->addr)) {
      *bad = i;
      return KS_E_INVAL;
    }
    memset(&sorted[i], 0, sizeof(sorted[i]));
    sorted[i].addr = b->addr;
    sorted[i].port = b->port;
  }
  if (s->n_backends > 1) qsort(sorted, s->n_backends, sizeof(*sorted), cmp_qsort);
  for (uint32_t i = 1; i < s->n_backends; i++) {
    if (ks_backend_cmp(&sorted[i - 1], &sorted[i]) == 0) {
      int seen = 0; /* report the duplicate's second occurrence in the given order */
      for (uint32_t j = 0; j < s->n_backends; j++) {
        if (ks_backend_cmp(&s->backends[j], &sorted[i]) != 0) continue;
        if (seen) {
          *bad = j;
          break;
        }
        seen = 1;
      }
      return KS_E_EXISTS;
    }
  }
  return KS_OK;
}

int ks_service_update(ks_tables_t *t, const ks_service_spec_t *s, uint32_t *bad_backend) {
  uint32_t bad_local;
  uint32_t *bad = bad_backend ? bad_backend : &bad_local;
  size_t n = s->n_backends > KS_MAX_BACKENDS ? 0 : s->n_backends;
  ks_backend_t *sorted = calloc(n ? n : 1, sizeof(*sorted));
  ks_backend_t *given = calloc(n ? n : 1, sizeof(*given));
  int rv = (sorted && given) ? validate(s, sorted, bad) : KS_E_NOMEM;
  if (rv) goto fail;
  for (uint32_t i = 0; i < n; i++) {
    given[i].addr = s->backends[i].addr;
    given[i].port = s->backends[i].port;
  }
  ks_skey_t k;
  uint32_t slot;
  make_skey(&k, &s->vip, s->proto, s->port);
  if (kp_hash_find(&t->index, &k, &slot)) {
    /* replace in place: one pointer swap each, under the caller's barrier */
    ks_service_t *o = t->svc[slot];
    free(o->given);
    free(o->sorted);
    o->given = given;
    o->sorted = sorted;
    o->n = (uint32_t)n;
    o->timeout_s = s->timeout_s;
    o->gen++;
    return KS_OK;
  }
  if (t->count >= KS_MAX_SERVICES) {
    rv = KS_E_RANGE;
    goto fail;
  }
  for (slot = 0; slot < KS_MAX_SERVICES && t->svc[slot]; slot++)
    ;
  ks_service_t *o = calloc(1, sizeof(*o));
  if (!o) {
    rv = KS_E_NOMEM;
    goto fail;
  }
  if ((rv = kp_hash_insert(&t->index, &k, slot)) != KS_OK) {
    free(o);
    goto fail;
  }
  o->key = k;
  o->uid = ++t->next_uid;
  o->gen = 1;
  o->timeout_s = s->timeout_s;
  o->n = (uint32_t)n;
  o->given = given;
  o->sorted = sorted;
  t->svc[slot] = o;
  t->count++;
  return KS_OK;
fail:
  free(sorted);
  free(given);
  return rv;
}

int ks_service_del(ks_tables_t *t, const ks_addr_t *vip, uint8_t proto, uint16_t port) {
  ks_skey_t k;
  uint32_t slot;
  make_skey(&k, vip, proto, port);
  if (!kp_hash_find(&t->index, &k, &slot)) return KS_E_NOENT;
  kp_hash_remove(&t->index, &k);
  service_free(t->svc[slot]);
  t->svc[slot] = NULL;
  t->count--;
  return KS_OK;
}

uint32_t ks_service_count(const ks_tables_t *t) { return t->count; }

static void to_spec(const ks_service_t *o, ks_service_spec_t *out) {
  memset(out, 0, sizeof(*out));
  memcpy(out->vip.b, o->key.vip, 16);
  out->proto = o->key.proto;
  out->port = o->key.port;
  out->timeout_s = o->timeout_s;
  out->n_backends = o->n;
  out->backends = o->given;
}

int ks_service_walk(const ks_tables_t *t, int (*fn)(const ks_service_spec_t *s, void *ctx), void *ctx) {
  for (uint32_t i = 0, seen = 0; i < KS_MAX_SERVICES && seen < t->count; i++) {
    if (!t->svc[i]) continue;
    seen++;
    ks_service_spec_t s;
    to_spec(t->svc[i], &s);
    int rv = fn(&s, ctx);
    if (rv) return rv;
  }
  return 0;
}

int ks_service_get(const ks_tables_t *t, const ks_addr_t *vip, uint8_t proto, uint16_t port,
                   ks_service_spec_t *out) {
  const ks_service_t *o = ks_service_of(t, vip, proto, port, NULL);
  if (!o) return KS_E_NOENT;
  to_spec(o, out);
  return KS_OK;
}

const char *ks_action_name(ks_action_t a) {
  switch (a) {
  case KS_PASS: return "pass";
  case KS_DNAT: return "dnat";
  case KS_UNDNAT: return "undnat";
  case KS_DROP_FULL: return "drop-table-full";
  case KS_DROP_NO_BACKEND: return "drop-no-backend";
  }
  return "?";
}
