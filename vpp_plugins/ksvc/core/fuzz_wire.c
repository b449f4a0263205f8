/*
 * Fuzz target of the ksvc API messages' decoding (ks_wire.c), the part of the
 * VPP glue that reads what a client sent: bytes become a service update's
 * tail (a backend count as the client claims it, then whatever bytes
 * arrived), decoded, then given to a real core as the service's backends.
 * Checked: a decode succeeds exactly when the claimed count fits in the bytes
 * that arrived and every address is one the core can hold as sent (a known
 * family, no IPv4-mapped IPv6); failed_at names the first bad backend; nothing
 * is read past the tail (ASan); decoded backends encode back to their bytes
 * (up to an IPv4 address's unused bytes); a service the core accepts reads
 * back with the same backends in the same order.
 * Built with clang -fsanitize=fuzzer for libFuzzer, or with gcc as a
 * deterministic random driver: ./fuzz_wire [seconds] [seed].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/kp_fuzz_driver.h"
#include "ks_wire.h"

static unsigned long reached[3]; /* decoded, services accepted, refused */

static void abort_with(const char *what) {
  fprintf(stderr, "ksvc fuzz_wire: invariant broken: %s\n", what);
  abort();
}

static void run(const uint8_t *data, size_t size) {
  if (size < 5) return;
  uint32_t n = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
  if (data[0] & 0x80) n %= 64; /* mostly counts near the truth, sometimes anything */
  size_t avail = size - 5;
  uint8_t *tail = malloc(avail ? avail : 1); /* its own size: a read past it is an ASan report */
  memcpy(tail, data + 5, avail);
  int fits = n <= KS_MAX_BACKENDS && (uint64_t)n * sizeof(ks_wire_backend_t) <= avail;
  uint32_t bad = ~0u;
  if (fits)
    for (uint32_t i = 0; i < n && bad == ~0u; i++)
      if (!kp_fuzz_addr_ok(tail + (uint64_t)i * sizeof(ks_wire_backend_t))) bad = i;
  ks_backend_t *be = fits && n ? calloc(n, sizeof(*be)) : NULL;
  uint32_t failed_at = 0;
  int rv = ks_wire_backends(tail, avail, n, be, &failed_at);
  if ((rv == KS_OK) != (fits && bad == ~0u)) abort_with("backends accepted or refused wrongly");
  if (rv != KS_OK) {
    if (failed_at != bad) abort_with("failed_at is not the first bad backend");
    reached[2]++;
    goto out;
  }
  reached[0]++;
  for (uint32_t i = 0; i < n; i++) {
    ks_wire_backend_t w, back;
    memcpy(&w, tail + (uint64_t)i * sizeof(w), sizeof(w));
    ks_wire_encode_backend(&be[i], &back);
    int alen = w.addr.af == KP_WIRE_AF_IP4 ? 4 : 16;
    if (back.addr.af != w.addr.af || memcmp(back.addr.un, w.addr.un, alen) || back.port != w.port)
      abort_with("a backend does not encode back to its bytes");
  }
  /* The decoded backends as a service of a real core, its VIP of the first backend's family. */
  ks_tables_t *t = ks_tables_new(0x5eed);
  ks_service_spec_t s = {.proto = 6, .port = 80, .timeout_s = 10800, .n_backends = n, .backends = be};
  kp_wire_addr_t vip = {.af = n && !ks_addr_is_v4(&be[0].addr) ? KP_WIRE_AF_IP6 : KP_WIRE_AF_IP4,
                        .un = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
  if (vip.af == KP_WIRE_AF_IP4) memcpy(vip.un, (uint8_t[]){10, 96, 0, 1}, 4);
  if (ks_wire_addr(&vip, &s.vip) != KS_OK) abort_with("the VIP");
  uint32_t bad_backend = 0;
  if (ks_service_update(t, &s, &bad_backend) == KS_OK) {
    reached[1]++;
    ks_service_spec_t got;
    if (ks_service_get(t, &s.vip, 6, 80, &got) != KS_OK || got.n_backends != n)
      abort_with("an accepted service does not read back");
    for (uint32_t i = 0; i < n; i++)
      if (memcmp(&got.backends[i].addr, &be[i].addr, sizeof(ks_addr_t)) || got.backends[i].port != be[i].port)
        abort_with("a service's backends read back otherwise");
  } else if (bad_backend != UINT32_MAX && bad_backend >= n) {
    abort_with("a refused service names no backend");
  }
  ks_tables_free(t);
out:
  free(be);
  free(tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run(data, size);
  return 0;
}

#ifndef KP_LIBFUZZER
/* Inputs toward what decodes: mostly the true count (or one off), one family per input as
 * a service has, no port 0, now and then an IPv4-mapped IPv6 backend (to be refused). */
static void shape(uint8_t *buf, size_t len, uint64_t r) {
  if (!(r % 4)) return;
  const size_t elt = sizeof(ks_wire_backend_t);
  uint32_t n = (uint32_t)((len - 5) / elt) + (uint32_t)(r % 3) - 1;
  buf[0] &= 0x7f;
  memcpy(buf + 1, &n, 4);
  if (!(r % 8)) return;
  int v6 = (r >> 8) & 1;
  for (size_t j = 5; j + elt <= len; j += elt) {
    buf[j] = (uint8_t)v6;
    if (buf[j + 17] == 0 && buf[j + 18] == 0) buf[j + 17] = 1;
    if (v6 && buf[j + 3] < 8) kp_fuzz_v4_mapped(buf + j + 1);
  }
}

int main(int argc, char **argv) {
  unsigned long runs = kp_fuzz_drive(argc, argv, 5, 1024, run, shape);
  printf("ksvc fuzz_wire: %lu inputs, no invariant broken; decoded %lu, services accepted %lu, refused %lu\n",
         runs, reached[0], reached[1], reached[2]);
  return 0;
}
#endif
