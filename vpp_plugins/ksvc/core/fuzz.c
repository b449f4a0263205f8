/*
 * Fuzz target of the ksvc core, checked against a small model.
 *
 * Bytes decode into operations: service update/delete (small pools of VIPs,
 * ports and backends, bad specs included), client packets, backend replies,
 * time steps, expiry sweeps, checksum round trips on generated packets, and
 * raw bytes through ks_parse/ks_rewrite. The model holds what must be true:
 *  - a DNAT goes to a backend of the service as it is now;
 *  - a live session (not expired, service not re-created, backend still in
 *    the set) keeps its backend, and its replies come back from its VIP; a
 *    packet that finds its session dead ends it for good;
 *  - a new flow of a client with a fresh affinity entry whose backend is
 *    still in the set goes to that backend (until an affinity eviction);
 *  - a rejected update changes nothing; rewrites keep checksums valid.
 * Any broken invariant aborts with a message.
 *
 * Built with -DKP_LIBFUZZER for libFuzzer; otherwise main() replays files
 * given as arguments, or "main ITERATIONS_K SEED" runs generated inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksvc_core.h"

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "ksvc fuzz: " __VA_ARGS__);                                \
    fprintf(stderr, "\n");                                                     \
    abort();                                                                   \
  } while (0)

typedef struct {
  const uint8_t *d;
  size_t n, i;
} rd_t;

static uint8_t u8(rd_t *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static uint16_t u16(rd_t *r) { return (uint16_t)(u8(r) << 8 | u8(r)); }

enum { N_VIP = 4, N_CLIENT = 4, N_BE = 6, N_SVC = 16, N_SESS = 256 };
static const uint8_t PROTOS[3] = {6, 17, 132};
static const uint16_t VPORTS[2] = {80, 81};
static const ks_timeouts_t TO = {.tcp = 5000, .udp = 3000, .other = 2000};

static ks_addr_t pool_addr(int fam6, int base, int i) {
  ks_addr_t a;
  if (fam6) {
    uint8_t x[16] = {0xfd, (uint8_t)base};
    x[15] = (uint8_t)(i + 1);
    ks_addr_from_v6(&a, x);
  } else {
    uint8_t x[4] = {10, (uint8_t)base, 0, (uint8_t)(i + 1)};
    ks_addr_from_v4(&a, x);
  }
  return a;
}
static ks_addr_t vip_addr(int v) { return pool_addr(v >= 2, 96, v & 1); }

/* model of one service key (vip, proto index, vport index) */
typedef struct {
  int exists;
  uint32_t instance; /* bumped at each create after a delete */
  uint32_t timeout_s, n;
  ks_backend_t be[8];
} m_svc_t;

typedef struct {
  int used;
  int client, vip, pi, vpi;
  uint16_t sport;
  uint32_t instance;
  ks_backend_t be;
  uint64_t last;
} m_sess_t;

typedef struct {
  int used;
  ks_backend_t be;
  uint64_t last, timeout_ms;
} m_aff_t;

typedef struct {
  ks_tables_t *t;
  ks_worker_t *w;
  uint64_t now;
  m_svc_t svc[N_VIP][3][2];
  m_sess_t sess[N_SESS];
  m_aff_t aff[N_VIP][3][2][N_CLIENT]; /* per service key and client; reset on re-create */
  uint64_t n_dnat, n_reply, n_affinity_checked, n_rewrites;
} fz_t;

static int be_eq(const ks_backend_t *a, const ks_backend_t *b) {
  return memcmp(a->addr.b, b->addr.b, 16) == 0 && a->port == b->port;
}
static int in_set(const m_svc_t *s, const ks_backend_t *b) {
  for (uint32_t i = 0; i < s->n; i++)
    if (be_eq(&s->be[i], b)) return 1;
  return 0;
}
static uint64_t sess_timeout(int pi) { return pi == 0 ? TO.tcp : pi == 1 ? TO.udp : TO.other; }

static int sess_live(fz_t *f, const m_sess_t *s) {
  const m_svc_t *v = &f->svc[s->vip][s->pi][s->vpi];
  return s->used && f->now < s->last + sess_timeout(s->pi) && v->exists && v->instance == s->instance &&
         in_set(v, &s->be);
}

static m_sess_t *find_sess(fz_t *f, int client, uint16_t sport, int vip, int pi, int vpi) {
  for (int i = 0; i < N_SESS; i++) {
    m_sess_t *s = &f->sess[i];
    if (s->used && s->client == client && s->sport == sport && s->vip == vip && s->pi == pi && s->vpi == vpi)
      return s;
  }
  return NULL;
}

static void touch_aff(fz_t *f, const m_sess_t *s) {
  m_aff_t *a = &f->aff[s->vip][s->pi][s->vpi][s->client];
  if (a->used && be_eq(&a->be, &s->be) && f->now - a->last < a->timeout_ms) a->last = f->now;
}

static void op_update(fz_t *f, rd_t *r) {
  int v = u8(r) % N_VIP, pi = u8(r) % 3, vpi = u8(r) % 2;
  uint8_t flags = u8(r);
  if (flags & 0x20) flags &= 0xc0; /* half the updates are valid by construction */
  ks_backend_t be[8];
  uint32_t n = u8(r) % 5;
  int fam6 = v >= 2;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t x = u8(r);
    be[i].addr = pool_addr((flags & 1) && i == n - 1 ? !fam6 : fam6, 2, x % N_BE);
    be[i].port = (flags & 2) && i == 0 ? 0 : (uint16_t)(8080 + (x >> 6));
  }
  ks_service_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.vip = vip_addr(v);
  sp.proto = (flags & 4) ? 1 : PROTOS[pi];
  sp.port = (flags & 8) ? 0 : VPORTS[vpi];
  sp.timeout_s = (flags & 16) ? 0 : 1 + (flags >> 6);
  sp.n_backends = n;
  sp.backends = be;
  int bad = (flags & 1 && n) || (flags & 2 && n) || (flags & 4) || (flags & 8) || (flags & 16);
  for (uint32_t i = 0; i < n && !bad; i++)
    for (uint32_t j = 0; j < i; j++)
      if (be_eq(&be[i], &be[j])) bad = 1;
  uint32_t before = ks_service_count(f->t);
  int rv = ks_service_update(f->t, &sp, NULL);
  m_svc_t *m = &f->svc[v][pi][vpi];
  if (bad) {
    if (rv == KS_OK) FAIL("bad spec accepted (flags %u)", flags);
    if (ks_service_count(f->t) != before) FAIL("rejected update changed the count");
    ks_service_spec_t got;
    int g = ks_service_get(f->t, &sp.vip, PROTOS[pi], VPORTS[vpi], &got);
    if ((g == KS_OK) != m->exists) FAIL("rejected update changed existence");
    if (g == KS_OK && (got.n_backends != m->n || got.timeout_s != m->timeout_s))
      FAIL("rejected update changed the service");
    return;
  }
  if (rv != KS_OK) FAIL("good spec refused: %d", rv);
  if (!m->exists) {
    m->exists = 1;
    m->instance++;
    memset(f->aff[v][pi][vpi], 0, sizeof(f->aff[v][pi][vpi]));
  }
  m->timeout_s = sp.timeout_s;
  m->n = n;
  memcpy(m->be, be, sizeof(be[0]) * n);
}

static void op_del(fz_t *f, rd_t *r) {
  int v = u8(r) % N_VIP, pi = u8(r) % 3, vpi = u8(r) % 2;
  ks_addr_t vip = vip_addr(v);
  int rv = ks_service_del(f->t, &vip, PROTOS[pi], VPORTS[vpi]);
  m_svc_t *m = &f->svc[v][pi][vpi];
  if ((rv == KS_OK) != m->exists) FAIL("delete answered %d, model exists %d", rv, m->exists);
  m->exists = 0;
}

static void op_forward(fz_t *f, rd_t *r) {
  int v = u8(r) % N_VIP, pi = u8(r) % 3, vpi = u8(r) % 2, c = u8(r) % N_CLIENT;
  uint16_t sport = (uint16_t)(1000 + u8(r) % 16);
  ks_packet_t p;
  memset(&p, 0, sizeof(p));
  p.src = pool_addr(v >= 2, 1, c);
  p.dst = vip_addr(v);
  p.sport = sport;
  p.dport = VPORTS[vpi];
  p.proto = PROTOS[pi];
  p.is_ip6 = v >= 2;
  uint64_t evicted = ks_worker_stats(f->w)->affinity_evicted;
  ks_result_t res = ks_forward(f->t, f->w, &p, f->now);
  m_svc_t *m = &f->svc[v][pi][vpi];
  m_sess_t *s = find_sess(f, c, sport, v, pi, vpi);
  if (!m->exists) {
    if (res.action != KS_PASS) FAIL("packet to a missing service: %s", ks_action_name(res.action));
    return;
  }
  /* A flow's packet that finds its session expired or stale (backend gone, service re-created)
   * ends it, whatever follows: re-adding the backend later does not revive it. */
  if (s && !sess_live(f, s)) s->used = 0;
  if (s && s->used) {
    if (res.action != KS_DNAT || memcmp(res.addr.b, s->be.addr.b, 16) || res.port != s->be.port)
      FAIL("live session lost its backend (%s)", ks_action_name(res.action));
    s->last = f->now;
    touch_aff(f, s);
    f->n_dnat++;
    return;
  }
  if (m->n == 0) {
    if (res.action != KS_DROP_NO_BACKEND) FAIL("no backend but %s", ks_action_name(res.action));
    return;
  }
  if (res.action == KS_DROP_FULL) return;
  if (res.action != KS_DNAT) FAIL("new flow: %s", ks_action_name(res.action));
  ks_backend_t got = {res.addr, res.port};
  if (!in_set(m, &got)) FAIL("DNAT to a backend not in the service");
  m_aff_t *a = &f->aff[v][pi][vpi][c];
  int fresh = a->used && f->now - a->last < a->timeout_ms && in_set(m, &a->be);
  if (fresh && evicted == 0 && ks_worker_stats(f->w)->affinity_evicted == 0) {
    f->n_affinity_checked++;
    if (!be_eq(&got, &a->be)) FAIL("fresh affinity ignored");
  }
  if (fresh && be_eq(&got, &a->be)) {
    a->last = f->now;
    a->timeout_ms = (uint64_t)m->timeout_s * 1000;
  } else {
    a->used = 1;
    a->be = got;
    a->last = f->now;
    a->timeout_ms = (uint64_t)m->timeout_s * 1000;
  }
  /* record the session; an older one with the same reply key is gone in the core too */
  ks_addr_t client = p.src;
  for (int i = 0; i < N_SESS; i++) {
    m_sess_t *o = &f->sess[i];
    if (o->used && o->pi == pi && o->sport == sport && be_eq(&o->be, &got) &&
        memcmp(pool_addr(o->vip >= 2, 1, o->client).b, client.b, 16) == 0)
      o->used = 0;
  }
  if (!s) {
    for (int i = 0; i < N_SESS && !s; i++)
      if (!f->sess[i].used) s = &f->sess[i];
    if (!s) return; /* model full: stop tracking (the core has no such limit here) */
  }
  *s = (m_sess_t){.used = 1, .client = c, .vip = v, .pi = pi, .vpi = vpi, .sport = sport,
                  .instance = m->instance, .be = got, .last = f->now};
  f->n_dnat++;
}

static void op_reply(fz_t *f, rd_t *r) {
  int used = 0, k = u8(r);
  for (int i = 0; i < N_SESS; i++) used += f->sess[i].used;
  if (!used) return;
  k %= used;
  m_sess_t *s = f->sess;
  for (int i = 0; i < N_SESS; i++)
    if (f->sess[i].used && k-- == 0) s = &f->sess[i];
  ks_packet_t p;
  memset(&p, 0, sizeof(p));
  p.src = s->be.addr;
  p.sport = s->be.port;
  p.dst = pool_addr(s->vip >= 2, 1, s->client);
  p.dport = s->sport;
  p.proto = PROTOS[s->pi];
  p.is_ip6 = s->vip >= 2;
  ks_result_t res = ks_reverse(f->t, f->w, &p, f->now);
  if (sess_live(f, s)) {
    ks_addr_t vip = vip_addr(s->vip);
    if (res.action != KS_UNDNAT || memcmp(res.addr.b, vip.b, 16) || res.port != VPORTS[s->vpi])
      FAIL("reply of a live session: %s", ks_action_name(res.action));
    s->last = f->now;
    touch_aff(f, s);
    f->n_reply++;
  } else {
    if (res.action != KS_PASS) FAIL("reply of a dead session: %s", ks_action_name(res.action));
    s->used = 0;
  }
}

/* Builds a valid packet from the input, rewrites it, checks every checksum. */
static uint16_t fold16(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}
static uint32_t sum16(const uint8_t *d, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(d[i] << 8 | d[i + 1]);
  if (n & 1) s += (uint32_t)d[n - 1] << 8;
  return s;
}
static uint16_t l4sum(const uint8_t *h, int ip6, uint8_t proto, uint32_t off, uint32_t len, int partial) {
  uint32_t s = ip6 ? sum16(h + 8, 32, 0) : sum16(h + 12, 8, 0);
  s += proto + (len - off);
  if (partial) return fold16(s);
  uint8_t tmp[600];
  memcpy(tmp, h + off, len - off);
  int ck = proto == 6 ? 16 : 6;
  tmp[ck] = tmp[ck + 1] = 0;
  uint16_t c = (uint16_t)~fold16(sum16(tmp, len - off, s));
  return proto == 17 && c == 0 ? 0xffff : c;
}

static void op_rewrite(fz_t *f, rd_t *r) {
  uint8_t h[600];
  uint8_t flags = u8(r);
  int ip6 = flags & 1, partial = (flags >> 1) & 1, is_dst = (flags >> 2) & 1;
  uint8_t proto = PROTOS[(flags >> 3) % 3];
  if (proto == 132) partial = 0;
  uint32_t off = ip6 ? 40 : 20, hl = proto == 6 ? 20 : proto == 17 ? 8 : 12;
  uint32_t payload = u8(r) % 200, len = off + hl + payload;
  for (uint32_t i = 0; i < len; i++) h[i] = u8(r);
  if (ip6) {
    h[0] = 0x60;
    h[4] = (uint8_t)((len - 40) >> 8);
    h[5] = (uint8_t)(len - 40);
    h[6] = proto;
  } else {
    h[0] = 0x45;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    h[6] &= 0x40; /* not a fragment */
    h[7] = 0;
    h[9] = proto;
    h[10] = h[11] = 0;
    uint16_t c = (uint16_t)~fold16(sum16(h, 20, 0));
    h[10] = (uint8_t)(c >> 8);
    h[11] = (uint8_t)c;
  }
  uint8_t *l4 = h + off;
  if (proto == 6) l4[12] = (uint8_t)((l4[12] & 0x0f) | 0x50);
  if (proto == 17) {
    l4[4] = (uint8_t)((len - off) >> 8);
    l4[5] = (uint8_t)(len - off);
  }
  if (proto == 132) {
    memset(l4 + 8, 0, 4);
    uint32_t c = ks_crc32c(l4, len - off);
    l4[8] = (uint8_t)c; l4[9] = (uint8_t)(c >> 8); l4[10] = (uint8_t)(c >> 16); l4[11] = (uint8_t)(c >> 24);
  } else {
    int ck = proto == 6 ? 16 : 6;
    int zero_udp = proto == 17 && !ip6 && !partial && (flags & 0x40);
    uint16_t c = zero_udp ? 0 : l4sum(h, ip6, proto, off, len, partial);
    l4[ck] = (uint8_t)(c >> 8);
    l4[ck + 1] = (uint8_t)c;
  }
  ks_packet_t p;
  if (ks_parse(h, len, &p) != 1) FAIL("a valid packet did not parse");
  ks_addr_t na = pool_addr(ip6, u8(r), u8(r));
  uint16_t np = u16(r);
  int was_zero = proto == 17 && !ip6 && l4[6] == 0 && l4[7] == 0;
  if (ks_rewrite(h, len, &p, is_dst, &na, np, partial) != 0) FAIL("rewrite refused a valid packet");
  ks_packet_t q;
  if (ks_parse(h, len, &q) != 1) FAIL("rewritten packet does not parse");
  const ks_addr_t *now_a = is_dst ? &q.dst : &q.src;
  if (memcmp(now_a->b, na.b, 16) || (is_dst ? q.dport : q.sport) != np) FAIL("rewrite did not write");
  if (!ip6 && fold16(sum16(h, 20, 0)) != 0xffff) FAIL("IPv4 header checksum broken");
  if (proto == 132) {
    uint8_t tmp[600];
    memcpy(tmp, l4, len - off);
    memset(tmp + 8, 0, 4);
    uint32_t c = ks_crc32c(tmp, len - off);
    if (l4[8] != (uint8_t)c || l4[9] != (uint8_t)(c >> 8) || l4[10] != (uint8_t)(c >> 16) ||
        l4[11] != (uint8_t)(c >> 24))
      FAIL("SCTP CRC broken");
  } else if (was_zero) {
    if (l4[6] || l4[7]) FAIL("UDP without checksum got one");
  } else {
    int ck = proto == 6 ? 16 : 6;
    uint16_t want = l4sum(h, ip6, proto, off, len, partial), have = (uint16_t)(l4[ck] << 8 | l4[ck + 1]);
    /* 0x0000 and 0xffff are the same ones-complement value in a TCP checksum */
    if (have != want && !(proto == 6 && !partial && (have | want) == 0xffff && (have & want) == 0))
      FAIL("L4 checksum broken: have %04x want %04x proto %u ip6 %d partial %d", have, want, proto, ip6, partial);
  }
  f->n_rewrites++;
}

static void op_raw(rd_t *r) {
  uint8_t h[256];
  uint32_t len = u8(r);
  for (uint32_t i = 0; i < len; i++) h[i] = u8(r);
  uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
  memcpy(copy, h, len);
  ks_packet_t p;
  if (ks_parse(copy, len, &p)) {
    ks_addr_t a = pool_addr(p.is_ip6, 7, 7);
    ks_rewrite(copy, len, &p, len & 1, &a, 1234, (len >> 1) & 1);
  }
  free(copy);
}

static void run(const uint8_t *d, size_t n, uint64_t *stats) {
  rd_t r = {d, n, 0};
  fz_t *f = calloc(1, sizeof(*f));
  f->t = ks_tables_new(11);
  f->w = ks_worker_new((u8(&r) & 1) ? 8 : 512, &TO, 13);
  if (!f->t || !f->w) FAIL("allocation");
  f->now = 1;
  while (r.i < r.n) {
    switch (u8(&r) % 16) {
    case 0: case 1: case 2: op_update(f, &r); break;
    case 3: op_del(f, &r); break;
    case 4: case 5: case 6: case 7: case 8: op_forward(f, &r); break;
    case 9: case 10: case 11: op_reply(f, &r); break;
    case 12: f->now += u16(&r) % 2500; break;
    case 13: ks_worker_expire(f->w, f->now, u8(&r)); break;
    case 14: op_rewrite(f, &r); break;
    case 15: op_raw(&r); break;
    }
  }
  if (stats) {
    stats[0] += f->n_dnat;
    stats[1] += f->n_reply;
    stats[2] += f->n_affinity_checked;
    stats[3] += f->n_rewrites;
  }
  ks_worker_free(f->w);
  ks_tables_free(f->t);
  free(f);
}

#ifdef KP_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  run(d, n, NULL);
  return 0;
}
#else
int main(int argc, char **argv) {
  uint64_t stats[4] = {0};
  if (argc == 3 && strspn(argv[1], "0123456789") == strlen(argv[1])) {
    /* generated inputs: ITERATIONS_K thousand runs from SEED (xorshift) */
    unsigned long iters = strtoul(argv[1], 0, 10) * 1000, seed = strtoul(argv[2], 0, 10);
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    uint8_t buf[4096];
    for (unsigned long it = 0; it < iters; it++) {
      size_t n = 64 + (size_t)(x % 4000);
      for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)(x >> 24);
      }
      run(buf, n, stats);
    }
  } else {
    for (int i = 1; i < argc; i++) { /* replay files (a corpus, a crash) */
      FILE *fp = fopen(argv[i], "rb");
      if (!fp) FAIL("cannot open %s", argv[i]);
      uint8_t *buf = malloc(1 << 20);
      size_t n = fread(buf, 1, 1 << 20, fp);
      fclose(fp);
      run(buf, n, stats);
      free(buf);
    }
  }
  printf("no invariant broken; checked: dnat %llu, reply %llu, affinity %llu, rewrite %llu\n",
         (unsigned long long)stats[0], (unsigned long long)stats[1], (unsigned long long)stats[2],
         (unsigned long long)stats[3]);
  return 0;
}
#endif
