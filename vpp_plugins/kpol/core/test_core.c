/*
 * Unit tests of the kpol core, then the shared vector files given as
 * arguments. Exit status 0 only when every check and every vector passes.
 * Build: gcc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fsanitize=address,undefined
 *        kp_hash.c kp_lpm.c kpol_core.c kp_flow.c kp_items.c kp_vectors.c test_core.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/kp_hash.h"
#include "../../common/kp_owner.h"
#include "kp_lpm.h"
#include "kp_vectors.h"
#include "kpol_core.h"

static int checks, failed;
#define CHECK(cond)                                                                    \
  do {                                                                                 \
    checks++;                                                                          \
    if (!(cond)) {                                                                     \
      failed++;                                                                        \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
    }                                                                                  \
  } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void v4(kp_addr_t *a, uint32_t x) {
  uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
  kp_addr_from_v4(a, b);
}

/* hash: random inserts/removes against a shadow bitmap, across growth */
static void test_hash(void) {
  kp_hash_t h;
  CHECK(kp_hash_init(&h, 4, 4, 0, 42) == KP_OK);
  enum { N = 5000 };
  static uint8_t in[N];
  memset(in, 0, sizeof(in));
  for (int round = 0; round < 200000; round++) {
    uint32_t k = (uint32_t)(rnd() % N);
    if (rnd() & 1) {
      int rv = kp_hash_insert(&h, &k, k * 3);
      CHECK(rv == (in[k] ? KP_E_EXISTS : KP_OK));
      in[k] = 1;
    } else {
      int rv = kp_hash_remove(&h, &k);
      CHECK(rv == (in[k] ? KP_OK : KP_E_NOENT));
      in[k] = 0;
    }
  }
  uint32_t count = 0;
  for (uint32_t k = 0; k < N; k++) {
    uint32_t v = 0;
    int f = kp_hash_find(&h, &k, &v);
    if (f != in[k] || (f && v != k * 3)) {
      CHECK(!"hash content differs from shadow");
      break;
    }
    count += in[k];
  }
  CHECK(count == h.count);
  /* a bounded table refuses to grow past its bound */
  kp_hash_t b;
  CHECK(kp_hash_init(&b, 4, 8, 8, 1) == KP_OK);
  int rv = KP_OK;
  uint32_t k;
  for (k = 0; k < 100 && rv == KP_OK; k++) rv = kp_hash_insert(&b, &k, 0);
  CHECK(rv == KP_E_NOMEM && b.count <= 8);
  kp_hash_free(&b);
  kp_hash_free(&h);
}

/* LPM against a linear scan over the prefixes it holds */
typedef struct {
  uint32_t net;
  uint8_t plen, mark;
  uint8_t live;
} pfx_t;

static int linear_member(const pfx_t *p, int n, uint32_t a) {
  int best = -1;
  uint8_t marks = 0;
  for (int i = 0; i < n; i++) {
    if (!p[i].live) continue;
    uint32_t mask = p[i].plen ? ~0u << (32 - p[i].plen) : 0;
    if ((a & mask) != p[i].net) continue;
    if (p[i].plen > best) {
      best = p[i].plen;
      marks = p[i].mark;
    } else if (p[i].plen == best) {
      marks |= p[i].mark;
    }
  }
  return marks == KP_LPM_INCLUDE;
}

static void test_lpm(void) {
  kp_lpm_t l;
  CHECK(kp_lpm_init(&l) == KP_OK);
  enum { NP = 300 };
  static pfx_t p[NP];
  memset(p, 0, sizeof(p));
  for (int round = 0; round < 4000; round++) {
    int i = (int)(rnd() % NP);
    kp_addr_t a;
    if (!p[i].live) {
      uint8_t plen = (uint8_t)(rnd() % 33);
      uint32_t mask = plen ? ~0u << (32 - plen) : 0;
      /* cluster addresses in 10/8 so prefixes nest often */
      uint32_t net = ((uint32_t)(0x0a000000u | (rnd() & 0x00ffffffu))) & mask;
      uint8_t mark = (rnd() & 3) ? KP_LPM_INCLUDE : KP_LPM_EXCLUDE;
      int dup = 0;
      for (int j = 0; j < NP; j++)
        if (p[j].live && p[j].net == net && p[j].plen == plen && p[j].mark == mark) dup = 1;
      v4(&a, net);
      int rv = kp_lpm_add(&l, &a, plen, mark);
      CHECK(rv == (dup ? KP_E_EXISTS : KP_OK));
      if (!dup) p[i] = (pfx_t){net, plen, mark, 1};
    } else {
      v4(&a, p[i].net);
      CHECK(kp_lpm_del(&l, &a, p[i].plen, p[i].mark) == KP_OK);
      p[i].live = 0;
    }
    for (int q = 0; q < 20; q++) {
      uint32_t x = (rnd() & 1) ? (uint32_t)rnd() : (0x0a000000u | (uint32_t)(rnd() & 0xffffff));
      v4(&a, x);
      if (kp_lpm_member(&l, &a) != linear_member(p, NP, x)) {
        CHECK(!"LPM differs from linear scan");
        round = 1 << 30;
        break;
      }
    }
  }
  /* host bits, bad lengths, bad marks */
  kp_addr_t a;
  v4(&a, 0x0a000001);
  CHECK(kp_lpm_add(&l, &a, 8, KP_LPM_INCLUDE) == KP_E_INVAL);
  CHECK(kp_lpm_add(&l, &a, 33, KP_LPM_INCLUDE) == KP_E_INVAL);
  CHECK(kp_lpm_add(&l, &a, 32, 3) == KP_E_INVAL);
  /* deleting everything prunes the trie back to its roots */
  for (int i = 0; i < NP; i++)
    if (p[i].live) {
      v4(&a, p[i].net);
      CHECK(kp_lpm_del(&l, &a, p[i].plen, p[i].mark) == KP_OK);
    }
  CHECK(l.n_prefixes == 0);
  CHECK(l.nodes[l.root[0]].child[0] == 0 && l.nodes[l.root[0]].child[1] == 0);
  kp_lpm_free(&l);
}

static void test_tables_limits(void) {
  kp_tables_t *t = kp_tables_new(2, 7);
  CHECK(kp_tables_new(0, 7) == NULL);
  CHECK(kp_set_add(t, KP_MAX_SET_ID, KP_SET_ADDR) == KP_E_RANGE);
  CHECK(kp_set_add(t, 1, (kp_set_kind_t)9) == KP_E_INVAL);
  CHECK(kp_set_add(t, 1, KP_SET_ADDR) == KP_OK);
  CHECK(kp_set_del(t, 0xffffffffu) == KP_E_RANGE);
  kp_dir_spec_t big = {.n_rules = KP_MAX_RULES + 1, .rules = NULL};
  const kp_dir_spec_t *dirs[2] = {&big, NULL};
  CHECK(kp_policy_set(t, 1, dirs) == KP_E_RANGE);
  kp_dir_spec_t nul = {.n_rules = 3, .rules = NULL};
  dirs[0] = &nul;
  CHECK(kp_policy_set(t, 1, dirs) == KP_E_INVAL);
  uint32_t bad_ref = 0xfffffff0u;
  kp_rule_spec_t r = {.n_peers = 1, .peers = &bad_ref};
  kp_dir_spec_t one = {.n_rules = 1, .rules = &r};
  dirs[0] = &one;
  CHECK(kp_policy_set(t, 1, dirs) == KP_E_RANGE);
  r = (kp_rule_spec_t){.any_peer = 1, .n_peers = 1, .peers = &bad_ref};
  CHECK(kp_policy_set(t, 1, dirs) == KP_E_INVAL);
  r = (kp_rule_spec_t){.n_peers = 1, .peers = NULL};
  CHECK(kp_policy_set(t, 1, dirs) == KP_E_INVAL);
  CHECK(kp_policy_set(t, KP_MAX_POLICY_ID, dirs) == KP_E_RANGE);
  CHECK(kp_attach(t, KP_MAX_SW_IF, 1) == KP_E_RANGE);
  CHECK(kp_attach(t, 3, 1) == KP_E_NOENT);
  /* per-thread counters sum in the dump */
  uint32_t one_set = 1;
  r = (kp_rule_spec_t){.n_peers = 1, .peers = &one_set};
  CHECK(kp_policy_set(t, 1, dirs) == KP_OK);
  /* the rule reads back as given, for dumps */
  kp_rule_spec_t back;
  CHECK(kp_policy_rule(t, 1, KP_INGRESS, 0, &back) == KP_OK);
  CHECK(back.n_peers == 1 && back.peers[0] == 1 && !back.any_peer && back.n_ports == 0);
  CHECK(kp_policy_rule(t, 1, KP_INGRESS, 1, &back) == KP_E_RANGE);
  CHECK(kp_policy_rule(t, 1, KP_EGRESS, 0, &back) == KP_E_NOENT);
  CHECK(kp_policy_n_rules(t, 1, KP_EGRESS) == -1 && kp_policy_max_id(t) > 1);
  CHECK(kp_attach(t, 3, 1) == KP_OK);
  kp_member_t m;
  memset(&m, 0, sizeof(m));
  v4(&m.addr, 0x0a000001);
  CHECK(kp_set_member_add(t, 1, &m) == KP_OK);
  kp_timeouts_t to = {10, 10, 10};
  kp_worker_t *w0 = kp_worker_new(0, 16, &to, 1), *w1 = kp_worker_new(1, 16, &to, 2);
  CHECK(kp_worker_new(KP_MAX_THREADS, 16, &to, 1) == NULL);
  kp_packet_t p = {.proto = 6, .sport = 1, .dport = 80};
  v4(&p.src, 0x0a000001);
  v4(&p.dst, 0x0a000002);
  CHECK(kp_process(t, w0, 3, KP_INGRESS, &p, 0).allowed);
  p.sport = 2;
  CHECK(kp_process(t, w1, 3, KP_INGRESS, &p, 0).allowed);
  v4(&p.src, 0x0a000009);
  CHECK(!kp_process(t, w1, 3, KP_INGRESS, &p, 0).allowed);
  uint64_t c[4] = {0};
  CHECK(kp_policy_counters(t, 1, KP_INGRESS, c, 4) == 2);
  CHECK(c[0] == 1 && c[1] == 2);
  /* expiry reclaims idle flows */
  CHECK(kp_worker_n_flows(w0) == 1 && kp_worker_n_flows(w1) == 1);
  CHECK(kp_worker_expire(w0, 9, 100) == 0);
  CHECK(kp_worker_expire(w0, 10, 100) == 1 && kp_worker_n_flows(w0) == 0);
  kp_worker_flush(w1);
  CHECK(kp_worker_n_flows(w1) == 0);
  /* walk returns what was added */
  kp_worker_free(w0);
  kp_worker_free(w1);
  kp_tables_free(t);
}

static int count_cb(const kp_member_t *m, void *ctx) {
  (void)m;
  (*(int *)ctx)++;
  return 0;
}

static void test_batches_and_walk(void) {
  kp_tables_t *t = kp_tables_new(1, 9);
  CHECK(kp_set_add(t, 5, KP_SET_NET) == KP_OK);
  kp_member_t m[3];
  memset(m, 0, sizeof(m));
  v4(&m[0].addr, 0x0a000000);
  m[0].plen = 8;
  v4(&m[1].addr, 0x0a010000);
  m[1].plen = 16;
  m[1].exclude = 1;
  v4(&m[2].addr, 0x0a010001); /* host bits: malformed */
  m[2].plen = 16;
  uint32_t at = 99;
  CHECK(kp_set_members_add(t, 5, m, 3, &at) == KP_E_INVAL && at == 2);
  CHECK(kp_set_size(t, 5) == 0);
  CHECK(kp_set_members_add(t, 5, m, 2, &at) == KP_OK && kp_set_size(t, 5) == 2);
  int n = 0;
  CHECK(kp_set_walk(t, 5, count_cb, &n) == KP_OK && n == 2);
  kp_member_t d[2] = {m[1], m[1]};
  CHECK(kp_set_members_del(t, 5, d, 2, &at) == KP_E_NOENT && at == 1);
  CHECK(kp_set_size(t, 5) == 2);
  kp_addr_t a;
  v4(&a, 0x0a010203);
  CHECK(kp_set_contains(t, 5, &a, 0, 0) == 0);
  kp_tables_free(t);
}

static void test_items(void) {
  kp_tables_t *t = kp_tables_new(1, 3);
  CHECK(kp_set_add(t, 1, KP_SET_ADDR) == KP_OK);
  CHECK(kp_set_add(t, 2, KP_SET_ADDR_PORT) == KP_OK);
  int iso[2] = {1, 0}, got_iso[2];
  /* parts of one rule may come in any order; the dump groups them by kind */
  kp_item_t in[] = {
      {.type = KP_ITEM_RULE, .dir = 0},
      {.type = KP_ITEM_PORTS, .dir = 0, .proto = 6, .lo = 80, .hi = 80},
      {.type = KP_ITEM_PEER_PORT, .dir = 0, .set_id = 2},
      {.type = KP_ITEM_PEER, .dir = 0, .set_id = 1},
      {.type = KP_ITEM_RULE, .dir = 0, .any_peer = 1},
  };
  CHECK(kp_policy_set_items(t, 4, iso, in, 5) == KP_OK);
  kp_item_t out[8];
  CHECK(kp_policy_get_items(t, 4, got_iso, out, 8) == 5 && got_iso[0] == 1 && got_iso[1] == 0);
  CHECK(out[1].type == KP_ITEM_PEER && out[1].set_id == 1);
  CHECK(out[2].type == KP_ITEM_PORTS && out[2].lo == 80);
  CHECK(out[3].type == KP_ITEM_PEER_PORT && out[4].any_peer == 1);
  CHECK(kp_policy_get_items(t, 4, got_iso, out, 2) == 5); /* size query with a short buffer */
  kp_item_t orphan = {.type = KP_ITEM_PEER, .set_id = 1};
  CHECK(kp_policy_set_items(t, 5, iso, &orphan, 1) == KP_E_INVAL);
  kp_item_t egress_rule = {.type = KP_ITEM_RULE, .dir = 1};
  CHECK(kp_policy_set_items(t, 5, iso, &egress_rule, 1) == KP_E_INVAL); /* egress not isolated */
  kp_item_t bad_dir = {.type = KP_ITEM_RULE, .dir = 2};
  CHECK(kp_policy_set_items(t, 5, iso, &bad_dir, 1) == KP_E_INVAL);
  kp_item_t bad_type[2] = {{.type = KP_ITEM_RULE}, {.type = 7}};
  CHECK(kp_policy_set_items(t, 5, iso, bad_type, 2) == KP_E_INVAL);
  CHECK(kp_policy_get_items(t, 5, got_iso, out, 8) == KP_E_NOENT);
  kp_tables_free(t);
}

/* Two workers beside the main thread, as the VPP glue dispatches: each packet is judged by the
 * worker owning its interface (kp_owner_thread), whichever thread received it. */
static void test_threads(void) {
  enum { FIRST = 1, N_WORKERS = 2, N_THREADS = 3, SERVER_IF = 3 };
  CHECK(kp_owner_thread(7, FIRST, 0) == 0); /* no workers: the main thread owns all */
  CHECK(kp_owner_thread(3, FIRST, N_WORKERS) != kp_owner_thread(4, FIRST, N_WORKERS)); /* spread */
  for (uint32_t i = 0; i < 64; i++) {
    uint32_t o = kp_owner_thread(i, FIRST, N_WORKERS);
    CHECK(o >= FIRST && o < FIRST + N_WORKERS); /* never the main thread */
  }
  kp_tables_t *t = kp_tables_new(N_THREADS, 11);
  kp_timeouts_t to = {1000, 1000, 1000};
  kp_worker_t *w[N_THREADS];
  for (uint32_t i = 0; i < N_THREADS; i++) w[i] = kp_worker_new(i, 16, &to, 20 + i);
  /* the server: ingress only from the client, egress isolated with no rule (replies only) */
  CHECK(kp_set_add(t, 1, KP_SET_ADDR) == KP_OK);
  kp_member_t m;
  memset(&m, 0, sizeof(m));
  v4(&m.addr, 0x0a000101);
  CHECK(kp_set_member_add(t, 1, &m) == KP_OK);
  int iso[2] = {1, 1};
  kp_item_t items[] = {{.type = KP_ITEM_RULE, .dir = 0}, {.type = KP_ITEM_PEER, .dir = 0, .set_id = 1}};
  CHECK(kp_policy_set_items(t, 1, iso, items, 2) == KP_OK);
  CHECK(kp_attach(t, SERVER_IF, 1) == KP_OK);
  kp_packet_t syn = {.proto = 6, .sport = 40000, .dport = 80}, reply = {.proto = 6, .sport = 80, .dport = 40000};
  v4(&syn.src, 0x0a000101);
  v4(&syn.dst, 0x0a000201);
  reply.src = syn.dst;
  reply.dst = syn.src;
  uint32_t owner = kp_owner_thread(SERVER_IF, FIRST, N_WORKERS);
  /* the request received on worker 1, the reply on the main thread: both judged by the owner */
  CHECK(kp_process(t, w[owner], SERVER_IF, KP_INGRESS, &syn, 0).allowed);
  kp_verdict_t v = kp_process(t, w[owner], SERVER_IF, KP_EGRESS, &reply, 1);
  CHECK(v.allowed && v.flow_hit);
  /* what a per-thread table without handoff did (the bug): the reply on another thread's table */
  uint32_t other = owner == 1 ? 2 : 1;
  CHECK(!kp_process(t, w[other], SERVER_IF, KP_EGRESS, &reply, 1).allowed);
  CHECK(!kp_process(t, w[0], SERVER_IF, KP_EGRESS, &reply, 1).allowed);
  for (uint32_t i = 0; i < N_THREADS; i++) kp_worker_free(w[i]);
  kp_tables_free(t);
}

int main(int argc, char **argv) {
  test_hash();
  test_threads();
  test_lpm();
  test_tables_limits();
  test_batches_and_walk();
  test_items();
  printf("unit: %d checks, %d failed\n", checks, failed);
  int vec_fail = 0;
  for (int i = 1; i < argc; i++) {
    int r = kp_vectors_run_file(argv[i], stderr);
    printf("vectors %s: %s\n", argv[i], r == 0 ? "ok" : r < 0 ? "error" : "MISMATCH");
    if (r != 0) vec_fail++;
  }
  return failed || vec_fail ? 1 : 0;
}
