/* Unit tests of the ksvc core: services, sessions and affinity, packets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/kp_owner.h"
#include "ksvc_core.h"

static int failed, passed;
#define CHECK(c)                                                               \
  do {                                                                         \
    if (c) passed++;                                                           \
    else {                                                                     \
      failed++;                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);    \
    }                                                                          \
  } while (0)

static ks_addr_t v4(int a, int b, int c, int d) {
  uint8_t x[4] = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d};
  ks_addr_t r;
  ks_addr_from_v4(&r, x);
  return r;
}

static ks_addr_t v6(uint16_t first, uint16_t last) {
  uint8_t x[16] = {0};
  x[0] = (uint8_t)(first >> 8);
  x[1] = (uint8_t)first;
  x[14] = (uint8_t)(last >> 8);
  x[15] = (uint8_t)last;
  ks_addr_t r;
  ks_addr_from_v6(&r, x);
  return r;
}

static int addr_eq(const ks_addr_t *a, const ks_addr_t *b) { return memcmp(a->b, b->b, 16) == 0; }

static ks_packet_t pkt(ks_addr_t src, uint16_t sport, ks_addr_t dst, uint16_t dport, uint8_t proto) {
  ks_packet_t p;
  memset(&p, 0, sizeof(p));
  p.src = src;
  p.dst = dst;
  p.sport = sport;
  p.dport = dport;
  p.proto = proto;
  p.is_ip6 = !ks_addr_is_v4(&src);
  return p;
}

static ks_service_spec_t spec(ks_addr_t vip, uint8_t proto, uint16_t port, uint32_t timeout,
                              const ks_backend_t *be, uint32_t n) {
  ks_service_spec_t s;
  memset(&s, 0, sizeof(s));
  s.vip = vip;
  s.proto = proto;
  s.port = port;
  s.timeout_s = timeout;
  s.backends = be;
  s.n_backends = n;
  return s;
}

static int count_cb(const ks_service_spec_t *s, void *ctx) {
  (void)s;
  (*(int *)ctx)++;
  return 0;
}

static void test_service_validation(void) {
  ks_tables_t *t = ks_tables_new(1);
  ks_backend_t be[3] = {{v4(10, 1, 0, 1), 8080}, {v4(10, 1, 0, 2), 8080}, {v4(10, 1, 0, 1), 8080}};
  ks_addr_t vip = v4(10, 96, 0, 10);
  uint32_t bad = 0;
  ks_service_spec_t s = spec(vip, 6, 80, 10, be, 2);
  CHECK(ks_service_update(t, &s, &bad) == KS_OK);
  CHECK(ks_service_count(t) == 1);
  /* each bad spec is refused and the service keeps its two backends */
  ks_service_spec_t b;
  b = spec(vip, 6, 0, 10, be, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL && bad == UINT32_MAX);
  b = spec(vip, 1, 80, 10, be, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL);
  b = spec(vip, 6, 80, 0, be, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL);
  b = spec(vip, 6, 80, KS_MAX_TIMEOUT_S + 1, be, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL);
  b = spec(vip, 6, 80, 10, be, 3);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_EXISTS && bad == 2);
  ks_backend_t mixed[2] = {{v4(10, 1, 0, 1), 8080}, {v6(0xfd00, 1), 8080}};
  b = spec(vip, 6, 80, 10, mixed, 2);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL && bad == 1);
  ks_backend_t port0[2] = {{v4(10, 1, 0, 1), 8080}, {v4(10, 1, 0, 3), 0}};
  b = spec(vip, 6, 80, 10, port0, 2);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL && bad == 1);
  ks_backend_t *many = calloc(KS_MAX_BACKENDS + 1, sizeof(*many));
  for (uint32_t i = 0; i <= KS_MAX_BACKENDS; i++) many[i] = (ks_backend_t){v4(10, 2, (int)(i >> 8), (int)(i & 0xff)), 80};
  b = spec(vip, 6, 80, 10, many, KS_MAX_BACKENDS + 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_RANGE);
  b = spec(vip, 6, 80, 10, many, KS_MAX_BACKENDS); /* exactly the limit is fine, elsewhere */
  b.port = 81;
  CHECK(ks_service_update(t, &b, &bad) == KS_OK);
  free(many);
  b = spec(v4(0, 0, 0, 0), 6, 80, 10, be, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL);
  ks_service_spec_t got;
  CHECK(ks_service_get(t, &vip, 6, 80, &got) == KS_OK);
  CHECK(got.n_backends == 2 && got.timeout_s == 10 && addr_eq(&got.backends[1].addr, &be[1].addr));
  /* v6 service with a v4 VIP family mismatch the other way */
  ks_backend_t b6[1] = {{v4(10, 1, 0, 1), 80}};
  b = spec(v6(0xfd00, 10), 17, 53, 10, b6, 1);
  CHECK(ks_service_update(t, &b, &bad) == KS_E_INVAL && bad == 0);
  /* replace, then delete */
  s = spec(vip, 6, 80, 30, be + 1, 1);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  CHECK(ks_service_get(t, &vip, 6, 80, &got) == KS_OK && got.n_backends == 1 && got.timeout_s == 30);
  CHECK(ks_service_count(t) == 2);
  int n = 0;
  ks_service_walk(t, count_cb, &n);
  CHECK(n == 2);
  CHECK(ks_service_del(t, &vip, 6, 80) == KS_OK);
  CHECK(ks_service_del(t, &vip, 6, 80) == KS_E_NOENT);
  CHECK(ks_service_get(t, &vip, 6, 80, &got) == KS_E_NOENT);
  CHECK(ks_service_count(t) == 1);
  ks_tables_free(t);
}

static const ks_timeouts_t TO = {.tcp = 7200000, .udp = 120000, .other = 30000};

static void test_affinity_and_expiry(int ip6) {
  ks_tables_t *t = ks_tables_new(7);
  ks_worker_t *w = ks_worker_new(1024, &TO, 99);
  ks_addr_t vip = ip6 ? v6(0xfd00, 0x10) : v4(10, 96, 0, 10);
  ks_addr_t client = ip6 ? v6(0xfd01, 2) : v4(10, 1, 1, 2);
  ks_backend_t be[2] = {{ip6 ? v6(0xfd02, 1) : v4(10, 1, 2, 1), 8080},
                        {ip6 ? v6(0xfd02, 2) : v4(10, 1, 2, 2), 8081}};
  ks_service_spec_t s = spec(vip, 6, 80, 2, be, 2);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  uint64_t now = 1000;
  ks_packet_t p = pkt(client, 40000, vip, 80, 6);
  ks_result_t r0 = ks_process(t, w, &p, now);
  CHECK(r0.action == KS_DNAT);
  /* within the timeout every new connection of the client lands there */
  for (int i = 1; i < 50; i++) {
    p = pkt(client, (uint16_t)(40000 + i), vip, 80, 6);
    ks_result_t r = ks_process(t, w, &p, now + (uint64_t)i * 10);
    CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &r0.addr) && r.port == r0.port);
  }
  CHECK(ks_worker_n_sessions(w) == 50 && ks_worker_n_affinity(w) == 1);
  CHECK(ks_worker_stats(w)->affinity_hits == 49);
  /* the reply of the first session comes back from the VIP */
  ks_packet_t rp = pkt(r0.addr, r0.port, client, 40000, 6);
  ks_result_t rr = ks_process(t, w, &rp, now + 600);
  CHECK(rr.action == KS_UNDNAT && addr_eq(&rr.addr, &vip) && rr.port == 80);
  /* packets of the sessions keep affinity fresh: 1.9 s after the reply is < 2 s */
  p = pkt(client, 50000, vip, 80, 6);
  ks_result_t r = ks_process(t, w, &p, now + 2500);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &r0.addr));
  CHECK(ks_worker_stats(w)->affinity_hits == 50);
  /* after the timeout, new connections spread over both backends */
  uint64_t later = now + 2500 + 2000;
  int hit[2] = {0, 0};
  for (int i = 0; i < 64; i++) {
    later += 2001; /* each past the previous affinity's timeout */
    p = pkt(client, (uint16_t)(20000 + i), vip, 80, 6);
    r = ks_process(t, w, &p, later);
    CHECK(r.action == KS_DNAT);
    hit[addr_eq(&r.addr, &be[1].addr)]++;
  }
  CHECK(hit[0] > 0 && hit[1] > 0);
  /* an existing session keeps its backend whatever affinity says now */
  p = pkt(client, 40000, vip, 80, 6);
  r = ks_process(t, w, &p, later + 1);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &r0.addr) && r.port == r0.port);
  /* other traffic passes */
  p = pkt(client, 40000, vip, 81, 6);
  CHECK(ks_process(t, w, &p, later + 2).action == KS_PASS);
  p = pkt(client, 40000, vip, 80, 17);
  CHECK(ks_process(t, w, &p, later + 2).action == KS_PASS);
  p = pkt(client, 0, vip, 80, 1);
  CHECK(ks_process(t, w, &p, later + 2).action == KS_PASS);
  /* everything expires: sessions after the TCP timeout, affinity after 2 s */
  while (ks_worker_expire(w, later + TO.tcp + 10, 1000))
    ;
  CHECK(ks_worker_n_sessions(w) == 0 && ks_worker_n_affinity(w) == 0);
  CHECK(ks_worker_stats(w)->expired >= 50);
  ks_worker_free(w);
  ks_tables_free(t);
}

static void test_update_and_delete(void) {
  ks_tables_t *t = ks_tables_new(3);
  ks_worker_t *w = ks_worker_new(64, &TO, 5);
  ks_addr_t vip = v4(10, 96, 0, 11), client = v4(10, 1, 1, 3);
  ks_backend_t be[2] = {{v4(10, 1, 2, 1), 80}, {v4(10, 1, 2, 2), 80}};
  ks_service_spec_t s = spec(vip, 17, 53, 100, be, 2);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  ks_packet_t p = pkt(client, 1000, vip, 53, 17);
  ks_result_t r0 = ks_process(t, w, &p, 10);
  CHECK(r0.action == KS_DNAT);
  int first = addr_eq(&r0.addr, &be[1].addr);
  /* the update removes the chosen backend: its session and affinity are re-picked */
  s = spec(vip, 17, 53, 100, &be[!first], 1);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  ks_packet_t rp = pkt(be[first].addr, 80, client, 1000, 17);
  CHECK(ks_process(t, w, &rp, 20).action == KS_PASS); /* the old reply is no longer translated */
  CHECK(ks_worker_stats(w)->stale == 1 && ks_worker_n_sessions(w) == 0);
  ks_result_t r = ks_process(t, w, &p, 30);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &be[!first].addr));
  p = pkt(client, 1001, vip, 53, 17);
  r = ks_process(t, w, &p, 40);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &be[!first].addr));
  /* adding a backend keeps sessions to the ones that stay */
  s = spec(vip, 17, 53, 100, be, 2);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  r = ks_process(t, w, &p, 50);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &be[!first].addr));
  CHECK(ks_worker_stats(w)->forward_hits == 1);
  /* no backends: new flows dropped, counted */
  s = spec(vip, 17, 53, 100, be, 0);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  p = pkt(client, 1002, vip, 53, 17);
  CHECK(ks_process(t, w, &p, 60).action == KS_DROP_NO_BACKEND);
  CHECK(ks_worker_stats(w)->no_backend == 1);
  /* delete: sessions die lazily, on their next packet either way */
  s = spec(vip, 17, 53, 100, be, 2);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  p = pkt(client, 1003, vip, 53, 17);
  r = ks_process(t, w, &p, 70);
  CHECK(r.action == KS_DNAT);
  uint32_t n = ks_worker_n_sessions(w);
  CHECK(ks_service_del(t, &vip, 17, 53) == KS_OK);
  CHECK(ks_process(t, w, &p, 80).action == KS_PASS);
  rp = pkt(r.addr, r.port, client, 1003, 17);
  CHECK(ks_process(t, w, &rp, 90).action == KS_PASS);
  CHECK(ks_worker_n_sessions(w) == n - 1);
  /* a re-created service at the same key does not inherit old sessions or affinity */
  s = spec(vip, 17, 53, 100, be, 1);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  p = pkt(client, 1001, vip, 53, 17);
  uint64_t created = ks_worker_stats(w)->sessions_created;
  r = ks_process(t, w, &p, 100);
  CHECK(r.action == KS_DNAT && addr_eq(&r.addr, &be[0].addr));
  CHECK(ks_worker_stats(w)->sessions_created == created + 1);
  ks_worker_free(w);
  ks_tables_free(t);
}

static void test_table_full(void) {
  ks_tables_t *t = ks_tables_new(3);
  ks_timeouts_t to = {.tcp = 1000, .udp = 1000, .other = 1000};
  ks_worker_t *w = ks_worker_new(4, &to, 5);
  ks_addr_t vip = v4(10, 96, 0, 12);
  ks_backend_t be[1] = {{v4(10, 1, 2, 1), 80}};
  ks_service_spec_t s = spec(vip, 132, 80, 5, be, 1);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  for (int i = 0; i < 4; i++) {
    ks_packet_t p = pkt(v4(10, 1, 1, (uint8_t)(i + 1)), 5, vip, 80, 132);
    CHECK(ks_process(t, w, &p, 10).action == KS_DNAT);
  }
  ks_packet_t p = pkt(v4(10, 1, 1, 9), 5, vip, 80, 132);
  CHECK(ks_process(t, w, &p, 20).action == KS_DROP_FULL);
  CHECK(ks_worker_stats(w)->table_full == 1);
  /* existing sessions keep working */
  ks_packet_t q = pkt(v4(10, 1, 1, 1), 5, vip, 80, 132);
  CHECK(ks_process(t, w, &q, 30).action == KS_DNAT);
  /* once one has expired, its slot is reclaimed by the next new flow */
  CHECK(ks_process(t, w, &p, 1015).action == KS_DNAT);
  CHECK(ks_worker_n_sessions(w) == 4);
  /* affinity table is bounded too: 4 clients more evict the oldest entries */
  for (int i = 0; i < 4; i++) {
    ks_packet_t n = pkt(v4(10, 1, 3, (uint8_t)(i + 1)), 5, vip, 80, 132);
    ks_process(t, w, &n, 5000);
  }
  CHECK(ks_worker_n_affinity(w) <= 4 && ks_worker_stats(w)->affinity_evicted > 0);
  ks_worker_free(w);
  ks_tables_free(t);
}

/* ---- packets ---- */

static uint32_t sum16(const uint8_t *d, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(d[i] << 8 | d[i + 1]);
  if (n & 1) s += (uint32_t)d[n - 1] << 8;
  return s;
}
static uint16_t fold16(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/* The L4 checksum computed from scratch (field taken as zero). */
static uint16_t l4_csum(const uint8_t *h, const ks_packet_t *p, int partial) {
  uint32_t len = p->l3_len - p->l4_off, s = 0;
  if (p->is_ip6) s = sum16(h + 8, 32, 0);
  else s = sum16(h + 12, 8, 0);
  s += p->proto + len;
  if (partial) return fold16(s);
  uint8_t tmp[2048];
  memcpy(tmp, h + p->l4_off, len);
  tmp[p->proto == 6 ? 16 : 6] = tmp[(p->proto == 6 ? 16 : 6) + 1] = 0;
  uint16_t c = (uint16_t)~fold16(sum16(tmp, len, s));
  return (p->proto == 17 && c == 0) ? 0xffff : c;
}

static uint16_t rd(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* Builds a packet with correct checksums; returns its length. */
static uint32_t build(uint8_t *h, int ip6, uint8_t proto, ks_addr_t src, uint16_t sport, ks_addr_t dst,
                      uint16_t dport, uint32_t payload, int partial) {
  uint32_t l4len = (proto == 6 ? 20 : proto == 17 ? 8 : 12) + payload;
  uint32_t off = ip6 ? 40 : 20, len = off + l4len;
  memset(h, 0, len);
  if (ip6) {
    h[0] = 0x60;
    wr(h + 4, (uint16_t)l4len);
    h[6] = proto;
    h[7] = 64;
    memcpy(h + 8, src.b, 16);
    memcpy(h + 24, dst.b, 16);
  } else {
    h[0] = 0x45;
    wr(h + 2, (uint16_t)len);
    h[8] = 64;
    h[9] = proto;
    memcpy(h + 12, src.b + 12, 4);
    memcpy(h + 16, dst.b + 12, 4);
    wr(h + 10, (uint16_t)~fold16(sum16(h, 20, 0)));
  }
  uint8_t *l4 = h + off;
  wr(l4, sport);
  wr(l4 + 2, dport);
  for (uint32_t i = 0; i < payload; i++) l4[l4len - payload + i] = (uint8_t)(i * 7 + 3);
  if (proto == 6) l4[12] = 0x50;
  if (proto == 17) wr(l4 + 4, (uint16_t)l4len);
  ks_packet_t p;
  memset(&p, 0, sizeof(p));
  p.is_ip6 = (uint8_t)ip6;
  p.proto = proto;
  p.l4_off = (uint16_t)off;
  p.l3_len = len;
  if (proto == 132) {
    uint32_t c = ks_crc32c(l4, l4len);
    l4[8] = (uint8_t)c; l4[9] = (uint8_t)(c >> 8); l4[10] = (uint8_t)(c >> 16); l4[11] = (uint8_t)(c >> 24);
  } else {
    wr(l4 + (proto == 6 ? 16 : 6), l4_csum(h, &p, partial));
  }
  return len;
}

static int csums_ok(const uint8_t *h, const ks_packet_t *p, int partial) {
  if (!p->is_ip6 && fold16(sum16(h, 20, 0)) != 0xffff) return 0;
  const uint8_t *l4 = h + p->l4_off;
  if (p->proto == 132) {
    uint8_t tmp[2048];
    uint32_t n = p->l3_len - p->l4_off;
    memcpy(tmp, l4, n);
    memset(tmp + 8, 0, 4);
    uint32_t c = ks_crc32c(tmp, n);
    return l4[8] == (uint8_t)c && l4[9] == (uint8_t)(c >> 8) && l4[10] == (uint8_t)(c >> 16) &&
           l4[11] == (uint8_t)(c >> 24);
  }
  return rd(l4 + (p->proto == 6 ? 16 : 6)) == l4_csum(h, p, partial);
}

static void test_packets(void) {
  CHECK(ks_crc32c((const uint8_t *)"123456789", 9) == 0xe3069283u);
  uint8_t h[2048];
  const uint8_t protos[3] = {6, 17, 132};
  for (int ip6 = 0; ip6 < 2; ip6++) {
    for (int pi = 0; pi < 3; pi++) {
      for (int partial = 0; partial < 2; partial++) {
        if (partial && protos[pi] == 132) continue;
        ks_addr_t c = ip6 ? v6(0xfd01, 0xab) : v4(10, 1, 1, 2);
        ks_addr_t vip = ip6 ? v6(0xfd00, 0x10) : v4(10, 96, 0, 10);
        ks_addr_t be = ip6 ? v6(0xfd02, 0xffff) : v4(192, 168, 255, 254);
        uint32_t len = build(h, ip6, protos[pi], c, 40000, vip, 80, 33, partial);
        ks_packet_t p;
        CHECK(ks_parse(h, len, &p) == 1);
        CHECK(p.proto == protos[pi] && p.sport == 40000 && p.dport == 80 && p.is_ip6 == ip6);
        CHECK(addr_eq(&p.src, &c) && addr_eq(&p.dst, &vip) && p.l3_len == len);
        CHECK(ks_rewrite(h, len, &p, 1, &be, 8080, partial) == 0);
        ks_packet_t q;
        CHECK(ks_parse(h, len, &q) == 1 && addr_eq(&q.dst, &be) && q.dport == 8080 && q.sport == 40000);
        CHECK(csums_ok(h, &q, partial));
        CHECK(ks_rewrite(h, len, &q, 0, &vip, 80, partial) == 0);
        CHECK(ks_parse(h, len, &p) == 1 && addr_eq(&p.src, &vip) && p.sport == 80);
        CHECK(csums_ok(h, &p, partial));
        /* the wrong family is refused, untouched */
        uint8_t before[2048];
        memcpy(before, h, len);
        ks_addr_t other = ip6 ? v4(1, 2, 3, 4) : v6(1, 2);
        CHECK(ks_rewrite(h, len, &p, 1, &other, 1, partial) == -1 && memcmp(before, h, len) == 0);
      }
    }
  }
  /* IPv4 UDP without a checksum keeps none */
  ks_addr_t a = v4(10, 0, 0, 1), b = v4(10, 0, 0, 2);
  uint32_t len = build(h, 0, 17, a, 1, b, 2, 4, 0);
  wr(h + 26, 0);
  ks_packet_t p;
  CHECK(ks_parse(h, len, &p) == 1);
  CHECK(ks_rewrite(h, len, &p, 1, &a, 9, 0) == 0 && rd(h + 26) == 0 && fold16(sum16(h, 20, 0)) == 0xffff);
  /* refused: truncated headers, fragments, ICMP, bad IHL, IPv6 fragment header */
  len = build(h, 0, 6, a, 1, b, 2, 0, 0);
  CHECK(ks_parse(h, len - 1, &p) == 0);
  CHECK(ks_parse(h, 19, &p) == 0);
  wr(h + 6, 0x2000); /* MF */
  CHECK(ks_parse(h, len, &p) == 0);
  wr(h + 6, 0x0001); /* offset */
  CHECK(ks_parse(h, len, &p) == 0);
  wr(h + 6, 0x4000); /* DF is fine */
  CHECK(ks_parse(h, len, &p) == 1);
  h[0] = 0x44;
  CHECK(ks_parse(h, len, &p) == 0);
  h[0] = 0x4f; /* 60-byte header beyond the data */
  CHECK(ks_parse(h, 40, &p) == 0);
  h[0] = 0x45;
  h[9] = 1;
  CHECK(ks_parse(h, len, &p) == 0);
  h[9] = 6;
  wr(h + 2, 30); /* stated length shorter than the TCP header */
  CHECK(ks_parse(h, len, &p) == 0);
  len = build(h, 1, 6, v6(1, 1), 1, v6(1, 2), 2, 0, 0);
  h[6] = 44;
  CHECK(ks_parse(h, len, &p) == 0);
  /* IPv6 with a destination-options header before UDP */
  uint8_t e[128];
  memset(e, 0, sizeof(e));
  e[0] = 0x60;
  wr(e + 4, 16);
  e[6] = 60;
  e[40] = 17; /* next: UDP, length 0 -> 8 bytes */
  wr(e + 48, 1234);
  wr(e + 50, 53);
  CHECK(ks_parse(e, 56, &p) == 1 && p.proto == 17 && p.l4_off == 48 && p.dport == 53);
  CHECK(ks_parse(e, 55, &p) == 0);
  /* SCTP whose stated length runs past the data cannot be rewritten */
  len = build(h, 0, 132, a, 1, b, 2, 8, 0);
  CHECK(ks_parse(h, len, &p) == 1);
  CHECK(ks_rewrite(h, len - 4, &p, 1, &a, 5, 0) == -1);
}

/* Two workers beside the main thread, as the VPP glue dispatches: a client's request (its pod
 * interface's input) and the reply to it (the same interface's output) are judged by the worker
 * owning that interface, whichever threads received them; so is its affinity. */
static void test_threads(void) {
  enum { FIRST = 1, N_WORKERS = 2, N_THREADS = 3, CLIENT_IF = 5 };
  ks_tables_t *t = ks_tables_new(13);
  ks_worker_t *w[N_THREADS];
  for (uint32_t i = 0; i < N_THREADS; i++) w[i] = ks_worker_new(64, &TO, 30 + i);
  ks_addr_t vip = v4(10, 96, 0, 12), client = v4(10, 1, 1, 4);
  ks_backend_t be[2] = {{v4(10, 1, 2, 1), 80}, {v4(10, 1, 2, 2), 80}};
  ks_service_spec_t s = spec(vip, 6, 80, 100, be, 2);
  CHECK(ks_service_update(t, &s, NULL) == KS_OK);
  uint32_t owner = kp_owner_thread(CLIENT_IF, FIRST, N_WORKERS), other = owner == 1 ? 2 : 1;
  ks_packet_t syn = pkt(client, 40000, vip, 80, 6);
  ks_result_t r = ks_process(t, w[owner], &syn, 10); /* received on the main thread, handed over */
  CHECK(r.action == KS_DNAT);
  ks_packet_t reply = pkt(r.addr, r.port, client, 40000, 6);
  CHECK(ks_process(t, w[owner], &reply, 11).action == KS_UNDNAT); /* received on a worker */
  /* the client's next connections keep its backend (affinity on the owner) */
  for (uint16_t port = 40001; port < 40005; port++) {
    ks_packet_t p = pkt(client, port, vip, 80, 6);
    ks_result_t n = ks_process(t, w[owner], &p, 12);
    CHECK(n.action == KS_DNAT && addr_eq(&n.addr, &r.addr));
  }
  /* what per-thread tables without handoff did (the bug): the reply on another thread's table */
  CHECK(ks_process(t, w[other], &reply, 13).action == KS_PASS);
  CHECK(ks_process(t, w[0], &reply, 13).action == KS_PASS);
  for (uint32_t i = 0; i < N_THREADS; i++) ks_worker_free(w[i]);
  ks_tables_free(t);
}

int main(void) {
  test_service_validation();
  test_threads();
  test_affinity_and_expiry(0);
  test_affinity_and_expiry(1);
  test_update_and_delete();
  test_table_full();
  test_packets();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
