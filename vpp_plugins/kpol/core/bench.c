/*
 * Micro-benchmark of the kpol core: ns per packet for rule evaluation with
 * 1k and 10k members per set and 100 rules, LPM lookups, and flow-table
 * hits. Prints a table and writes JSON to the path given as argv[1];
 * argv[2] sets the repetitions per round (default 40); each figure is the
 * best of ROUNDS rounds.
 * Build: gcc -std=c11 -D_DEFAULT_SOURCE -O2 -march=native kp_*.c kpol_core.c bench.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kpol_core.h"

#define NPKT 4096
#define NRULES 100
#define NSETS 10

static int reps = 40; /* per round; ROUNDS rounds */

/* Best of ROUNDS timings of body over n packets: the machine is shared, and
 * the minimum is the figure least disturbed by other processes. */
#define ROUNDS 5
#define BEST_NS(out, n, body)                                                                \
  do {                                                                                       \
    (out) = 1e30;                                                                            \
    for (int round_ = 0; round_ < ROUNDS; round_++) {                                        \
      double t0_ = now_ns();                                                                 \
      body;                                                                                  \
      double dt_ = (now_ns() - t0_) / (double)(n);                                           \
      if (dt_ < (out)) (out) = dt_;                                                          \
    }                                                                                        \
  } while (0)

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void v4(kp_addr_t *a, uint32_t x) {
  uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
  kp_addr_from_v4(a, b);
}

static uint64_t rs = 88172645463325252ULL;
static uint32_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return (uint32_t)rs;
}

typedef struct {
  const char *name;
  uint32_t members;
  double ns;
  unsigned long allowed;
} result_t;

/* Tables: NSETS address sets of n members each, one more set holding the
 * "last" peers, 100 rules: rule i -> set i % NSETS on tcp/80, rule 99 ->
 * the last set. Peers in the last set miss 99 hash lookups before matching:
 * the worst case of a linear rule list. */
static kp_tables_t *build(uint32_t n) {
  kp_tables_t *t = kp_tables_new(1, 42);
  kp_member_t m;
  memset(&m, 0, sizeof(m));
  for (uint32_t s = 0; s <= NSETS; s++) {
    kp_set_add(t, s + 1, KP_SET_ADDR);
    for (uint32_t i = 0; i < n; i++) {
      v4(&m.addr, 0x0a000000u | (s << 16) | i);
      kp_set_member_add(t, s + 1, &m);
    }
  }
  static uint32_t ids[NRULES];
  static kp_port_range_t port80 = {6, 80, 80};
  static kp_rule_spec_t rules[NRULES];
  for (uint32_t r = 0; r < NRULES; r++) {
    ids[r] = r == NRULES - 1 ? NSETS + 1 : r % NSETS + 1;
    rules[r] = (kp_rule_spec_t){.n_peers = 1, .peers = &ids[r], .n_ports = 1, .ports = &port80};
  }
  kp_dir_spec_t ds = {.n_rules = NRULES, .rules = rules};
  const kp_dir_spec_t *dirs[2] = {&ds, NULL};
  if (kp_policy_set(t, 1, dirs) || kp_attach(t, 1, 1)) {
    fprintf(stderr, "bench setup failed\n");
    exit(1);
  }
  return t;
}

static double time_eval(kp_tables_t *t, kp_packet_t *pk, unsigned long *allowed) {
  unsigned long ok = 0;
  double best;
  BEST_NS(best, (double)reps * NPKT, {
    for (int r = 0; r < reps; r++)
      for (int i = 0; i < NPKT; i++) ok += kp_evaluate(t, 1, KP_INGRESS, &pk[i]).allowed;
  });
  *allowed = ok;
  return best;
}

int main(int argc, char **argv) {
  static kp_packet_t pk[NPKT];
  if (argc > 2 && atoi(argv[2]) > 0) reps = atoi(argv[2]);
  result_t res[16];
  int nres = 0;
  uint32_t sizes[2] = {1000, 10000};
  for (int si = 0; si < 2; si++) {
    uint32_t n = sizes[si];
    kp_tables_t *t = build(n);
    /* worst: every packet matches only rule 99 */
    for (int i = 0; i < NPKT; i++) {
      pk[i] = (kp_packet_t){.proto = 6, .sport = (uint16_t)(1024 + i), .dport = 80};
      v4(&pk[i].src, 0x0a000000u | (NSETS << 16) | (rnd() % n));
      v4(&pk[i].dst, 0x0b000001);
    }
    res[nres].name = "eval_100_rules_match_last";
    res[nres].members = n;
    res[nres].ns = time_eval(t, pk, &res[nres].allowed);
    nres++;
    /* typical: peers spread over all sets, first matching rule is 0..9 or 99 */
    for (int i = 0; i < NPKT; i++) v4(&pk[i].src, 0x0a000000u | ((rnd() % (NSETS + 1)) << 16) | (rnd() % n));
    res[nres].name = "eval_100_rules_random_peer";
    res[nres].members = n;
    res[nres].ns = time_eval(t, pk, &res[nres].allowed);
    nres++;
    /* denied: peer in no set, all 100 rules miss */
    for (int i = 0; i < NPKT; i++) v4(&pk[i].src, 0x0c000000u | (rnd() % n));
    res[nres].name = "eval_100_rules_default_deny";
    res[nres].members = n;
    res[nres].ns = time_eval(t, pk, &res[nres].allowed);
    nres++;

    /* flow-table hits: NPKT established flows, then the same packets again */
    kp_timeouts_t to = {1000000, 1000000, 1000000};
    kp_worker_t *w = kp_worker_new(0, 65536, &to, 7);
    for (int i = 0; i < NPKT; i++) v4(&pk[i].src, 0x0a000000u | (NSETS << 16) | (rnd() % n));
    unsigned long ok = 0;
    for (int i = 0; i < NPKT; i++) ok += kp_process(t, w, 1, KP_INGRESS, &pk[i], 1).allowed;
    if (ok != NPKT) {
      fprintf(stderr, "flows not admitted\n");
      return 1;
    }
    ok = 0;
    BEST_NS(res[nres].ns, (double)reps * NPKT, {
      for (int r = 0; r < reps; r++)
        for (int i = 0; i < NPKT; i++) ok += kp_process(t, w, 1, KP_INGRESS, &pk[i], 2).allowed;
    });
    res[nres].name = "process_flow_hit";
    res[nres].members = n;
    res[nres].allowed = ok;
    nres++;
    /* replies of those flows come back the other way */
    for (int i = 0; i < NPKT; i++) {
      kp_addr_t a = pk[i].src;
      uint16_t p = pk[i].sport;
      pk[i].src = pk[i].dst;
      pk[i].dst = a;
      pk[i].sport = pk[i].dport;
      pk[i].dport = p;
    }
    ok = 0;
    BEST_NS(res[nres].ns, (double)reps * NPKT, {
      for (int r = 0; r < reps; r++)
        for (int i = 0; i < NPKT; i++) ok += kp_process(t, w, 1, KP_EGRESS, &pk[i], 3).allowed;
    });
    res[nres].name = "process_reply_hit";
    res[nres].members = n;
    res[nres].allowed = ok;
    nres++;
    kp_worker_free(w);
    kp_tables_free(t);
  }
  /* LPM: 1000 random v4 prefixes /16../32 and v6 /48../128 */
  {
    kp_tables_t *t = kp_tables_new(1, 1);
    kp_set_add(t, 1, KP_SET_NET);
    kp_member_t m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 1000; i++) {
      m.plen = (uint8_t)(16 + rnd() % 17);
      uint32_t mask = ~0u << (32 - m.plen);
      v4(&m.addr, (0x0a000000u | (rnd() & 0xffffff)) & mask);
      m.exclude = (i % 4) == 3;
      kp_set_member_add(t, 1, &m);
    }
    unsigned long hits = 0;
    for (int i = 0; i < NPKT; i++) v4(&pk[i].src, 0x0a000000u | (rnd() & 0xffffff));
    BEST_NS(res[nres].ns, (double)reps * NPKT, {
      for (int r = 0; r < reps; r++)
        for (int i = 0; i < NPKT; i++) hits += (unsigned long)kp_set_contains(t, 1, &pk[i].src, 0, 0);
    });
    res[nres].name = "lpm_v4_1000_prefixes";
    res[nres].members = 1000;
    res[nres].allowed = hits;
    nres++;
    kp_set_add(t, 2, KP_SET_NET);
    for (int i = 0; i < 1000; i++) {
      uint8_t b[16] = {0xfd, 0};
      for (int k = 2; k < 16; k++) b[k] = (uint8_t)rnd();
      m.plen = (uint8_t)(48 + rnd() % 81);
      for (int k = m.plen; k < 128; k++) b[k >> 3] &= (uint8_t)~(0x80 >> (k & 7));
      kp_addr_from_v6(&m.addr, b);
      m.exclude = (i % 4) == 3;
      kp_set_member_add(t, 2, &m);
    }
    for (int i = 0; i < NPKT; i++) {
      uint8_t b[16] = {0xfd, 0};
      for (int k = 2; k < 16; k++) b[k] = (uint8_t)rnd();
      kp_addr_from_v6(&pk[i].src, b);
    }
    hits = 0;
    BEST_NS(res[nres].ns, (double)reps * NPKT, {
      for (int r = 0; r < reps; r++)
        for (int i = 0; i < NPKT; i++) hits += (unsigned long)kp_set_contains(t, 2, &pk[i].src, 0, 0);
    });
    res[nres].name = "lpm_v6_1000_prefixes";
    res[nres].members = 1000;
    res[nres].allowed = hits;
    nres++;
    kp_tables_free(t);
  }
  printf("%-32s %8s %10s\n", "case", "members", "ns/packet");
  for (int i = 0; i < nres; i++) printf("%-32s %8u %10.1f\n", res[i].name, res[i].members, res[i].ns);
  if (argc > 1) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      return 1;
    }
    fprintf(f, "{\n  \"benchmark\": \"kpol core (vpp_plugins/kpol/core/bench.c)\",\n"
               "  \"unit\": \"ns per packet, one thread\",\n  \"rules\": %d,\n  \"results\": [\n",
            NRULES);
    for (int i = 0; i < nres; i++)
      fprintf(f, "    {\"case\": \"%s\", \"members\": %u, \"ns_per_packet\": %.1f}%s\n", res[i].name,
              res[i].members, res[i].ns, i + 1 < nres ? "," : "");
    fprintf(f, "  ],\n  \"flatness_10k_over_1k\": {");
    /* the same case at 10k and at 1k members: how flat the cost is in set size */
    int first = 1;
    for (int i = 0; i < nres; i++) {
      if (res[i].members != 1000) continue;
      for (int j = 0; j < nres; j++) {
        if (res[j].members != 10000 || strcmp(res[i].name, res[j].name) != 0) continue;
        fprintf(f, "%s\"%s\": %.2f", first ? "" : ", ", res[i].name, res[j].ns / res[i].ns);
        first = 0;
      }
    }
    fprintf(f, "}\n}\n");
    fclose(f);
  }
  return 0;
}
