/*
 * Micro-benchmark of the ksvc core: nanoseconds per packet for the data-plane
 * calls, on 1000 services x 10 backends and 65536 flows.
 *
 * Usage: bench OUT.json [quick]   ("quick": fewer rounds, for the test suite)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ksvc_core.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static ks_addr_t v4(uint32_t x) {
  uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
  ks_addr_t a;
  ks_addr_from_v4(&a, b);
  return a;
}

enum { N_SVC = 1000, N_BE = 10, N_FLOWS = 60000 };

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s OUT.json [quick]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? 1 : 20;
  ks_tables_t *t = ks_tables_new(42);
  ks_timeouts_t to = {.tcp = 7200000, .udp = 120000, .other = 120000};
  ks_backend_t be[N_BE];
  for (uint32_t s = 0; s < N_SVC; s++) {
    for (uint32_t b = 0; b < N_BE; b++) be[b] = (ks_backend_t){v4(0x0a010000u + s * N_BE + b), 8080};
    ks_service_spec_t sp = {.vip = v4(0x0a600000u + s), .proto = 6, .port = 80, .timeout_s = 10800,
                            .n_backends = N_BE, .backends = be};
    if (ks_service_update(t, &sp, NULL)) return 1;
  }
  ks_packet_t *fwd = calloc(N_FLOWS, sizeof(*fwd)), *rev = calloc(N_FLOWS, sizeof(*rev));
  ks_packet_t *other = calloc(N_FLOWS, sizeof(*other));
  for (uint32_t i = 0; i < N_FLOWS; i++) {
    fwd[i] = (ks_packet_t){.src = v4(0x0a020000u + i % 4096), .dst = v4(0x0a600000u + i % N_SVC),
                           .sport = (uint16_t)(10000 + i / 4096), .dport = 80, .proto = 6};
    other[i] = fwd[i];
    other[i].dst = v4(0x0a030000u + i % 4096);
  }
  const char *names[5] = {"new_session", "forward_hit", "reply_hit", "pass_not_a_service", "rewrite_ipv4_tcp"};
  double best[5] = {1e18, 1e18, 1e18, 1e18, 1e18};
  uint8_t pkt[60] = {0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 2, 0, 1, 10, 96, 0, 1,
                     0x27, 0x10, 0, 80, [32] = 0x50};
  for (int r = 0; r < rounds; r++) {
    ks_worker_t *w = ks_worker_new(65536, &to, 7);
    uint64_t now = 1000;
    double t0 = now_ns();
    for (uint32_t i = 0; i < N_FLOWS; i++) {
      ks_result_t res = ks_forward(t, w, &fwd[i], now);
      if (res.action != KS_DNAT) return 1;
      rev[i] = (ks_packet_t){.src = res.addr, .dst = fwd[i].src, .sport = res.port, .dport = fwd[i].sport,
                             .proto = 6};
    }
    double t1 = now_ns();
    for (uint32_t i = 0; i < N_FLOWS; i++)
      if (ks_forward(t, w, &fwd[i], now + 1).action != KS_DNAT) return 1;
    double t2 = now_ns();
    for (uint32_t i = 0; i < N_FLOWS; i++)
      if (ks_reverse(t, w, &rev[i], now + 2).action != KS_UNDNAT) return 1;
    double t3 = now_ns();
    for (uint32_t i = 0; i < N_FLOWS; i++)
      if (ks_forward(t, w, &other[i], now + 3).action != KS_PASS) return 1;
    double t4 = now_ns();
    ks_packet_t p;
    if (!ks_parse(pkt, sizeof(pkt), &p)) return 1;
    for (uint32_t i = 0; i < N_FLOWS; i++) ks_rewrite(pkt, sizeof(pkt), &p, 1, &fwd[i].dst, 80, 0);
    double t5 = now_ns();
    double d[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4};
    for (int k = 0; k < 5; k++)
      if (d[k] / N_FLOWS < best[k]) best[k] = d[k] / N_FLOWS;
    ks_worker_free(w);
  }
  FILE *f = fopen(argv[1], "w");
  if (!f) return 1;
  fprintf(f, "{\"services\": %d, \"backends_per_service\": %d, \"flows\": %d, \"rounds\": %d, \"results\": [\n",
          N_SVC, N_BE, N_FLOWS, rounds);
  for (int k = 0; k < 5; k++) {
    fprintf(f, "  {\"case\": \"%s\", \"ns_per_packet\": %.1f}%s\n", names[k], best[k], k < 4 ? "," : "");
    printf("%-20s %7.1f ns/packet\n", names[k], best[k]);
  }
  fprintf(f, "]}\n");
  fclose(f);
  free(fwd);
  free(rev);
  free(other);
  ks_tables_free(t);
  return 0;
}
