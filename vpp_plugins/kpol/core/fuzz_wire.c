/*
 * Fuzz target of the kpol API messages' decoding (kp_wire.c), the part of
 * the VPP glue that reads what a client sent: bytes become one message tail
 * (an element count as the client claims it, then whatever bytes arrived),
 * decoded as members or as policy items, then handed to a real core.
 * Checked: a decode succeeds exactly when the claimed count fits in the bytes
 * that arrived and every member is one the core can hold as sent (a known
 * address family; no IPv4-mapped IPv6 address, which the core would read as
 * IPv4), else failed_at names the first bad member; nothing is read past the tail (ASan); what is decoded
 * encodes back to the same bytes, up to the fields the wire leaves free (the
 * unused bytes of an IPv4 address, a boolean's non-zero value); and the core
 * takes the decoded values without breaking (sanitizers).
 * Built with clang -fsanitize=fuzzer for libFuzzer, or with gcc as a
 * deterministic random driver: ./fuzz_wire [seconds] [seed].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/kp_fuzz_driver.h"
#include "kp_wire.h"

static unsigned long reached[3]; /* decoded members, decoded items, refused */

static void abort_with(const char *what) {
  fprintf(stderr, "fuzz invariant broken: %s\n", what);
  abort();
}

static void check_members(const uint8_t *tail, uint64_t avail, uint32_t n) {
  int fits = n <= KP_WIRE_MAX_BATCH && (uint64_t)n * sizeof(kp_wire_member_t) <= avail;
  uint32_t bad = ~0u;
  if (fits)
    for (uint32_t i = 0; i < n && bad == ~0u; i++)
      if (!kp_fuzz_addr_ok(tail + (uint64_t)i * sizeof(kp_wire_member_t))) bad = i;
  kp_member_t *m = fits && n ? calloc(n, sizeof(*m)) : NULL;
  uint32_t failed_at = 0;
  int rv = kp_wire_members(tail, avail, n, m, &failed_at);
  if ((rv == KP_OK) != (fits && bad == ~0u)) abort_with("members accepted or refused wrongly");
  if (rv != KP_OK) {
    if (failed_at != bad) abort_with("failed_at is not the first bad member");
    reached[2]++;
    free(m);
    return;
  }
  reached[0]++;
  for (uint32_t i = 0; i < n; i++) {
    kp_wire_member_t w, back;
    memcpy(&w, tail + (uint64_t)i * sizeof(w), sizeof(w));
    kp_wire_encode_member(&m[i], &back);
    int alen = w.addr.af == KP_WIRE_AF_IP4 ? 4 : 16;
    if (back.addr.af != w.addr.af || memcmp(back.addr.un, w.addr.un, alen) || back.plen != w.plen || back.proto != w.proto ||
        back.port != w.port || back.exclude != (w.exclude ? 1 : 0))
      abort_with("a member does not encode back to its bytes");
  }
  /* The decoded members into a real core, in each kind of set. */
  kp_tables_t *t = kp_tables_new(1, 0x5eed);
  for (int kind = KP_SET_ADDR; kind <= KP_SET_ADDR_PORT; kind++) {
    if (kp_set_add(t, (uint32_t)kind, (kp_set_kind_t)kind) != KP_OK) abort_with("set add");
    uint32_t at = 0;
    int r = kp_set_members_add(t, (uint32_t)kind, m, n, &at);
    if (r != KP_OK && at >= n) abort_with("a refused batch names no member");
    if (r == KP_OK && n && kp_set_members_del(t, (uint32_t)kind, m, 1, &at) != KP_OK)
      abort_with("a member just added cannot be deleted");
  }
  kp_tables_free(t);
  free(m);
}

static void check_items(const uint8_t *tail, uint64_t avail, uint32_t n) {
  int fits = n <= KP_WIRE_MAX_BATCH && (uint64_t)n * sizeof(kp_wire_item_t) <= avail;
  kp_item_t *items = fits && n ? calloc(n, sizeof(*items)) : NULL;
  int rv = kp_wire_items(tail, avail, n, items);
  if ((rv == KP_OK) != fits) abort_with("items accepted or refused wrongly");
  if (rv != KP_OK) {
    reached[2]++;
    return;
  }
  reached[1]++;
  for (uint32_t i = 0; i < n; i++) {
    kp_wire_item_t w, back;
    memcpy(&w, tail + (uint64_t)i * sizeof(w), sizeof(w));
    kp_wire_encode_item(&items[i], &back);
    w.any_peer = w.any_peer ? 1 : 0;
    if (memcmp(&w, &back, sizeof(w))) abort_with("an item does not encode back to its bytes");
  }
  /* Sets 1..3 exist, so that items naming them get as far as the core's own checks. */
  kp_tables_t *t = kp_tables_new(1, 0x5eed);
  for (int kind = KP_SET_ADDR; kind <= KP_SET_ADDR_PORT; kind++) kp_set_add(t, (uint32_t)kind, (kp_set_kind_t)kind);
  int isolated[2] = {1, 1};
  if (kp_policy_set_items(t, 7, isolated, items, n) == KP_OK) {
    int iso[2];
    int64_t got = kp_policy_get_items(t, 7, iso, NULL, 0);
    if (got < 0 || (uint64_t)got != n) abort_with("a policy set from n items does not give n back");
  }
  kp_tables_free(t);
  free(items);
}

static void run(const uint8_t *data, size_t size) {
  if (size < 5) return;
  uint32_t n = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
  /* Mostly counts near the truth, sometimes anything (huge, off by one). */
  if (data[0] & 0x80) n %= 64;
  /* The tail in a buffer of its own size, so that a read past it is an ASan report. */
  size_t avail = size - 5;
  uint8_t *tail = malloc(avail ? avail : 1);
  memcpy(tail, data + 5, avail);
  if (data[0] & 1)
    check_items(tail, avail, n);
  else
    check_members(tail, avail, n);
  free(tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run(data, size);
  return 0;
}

#ifndef KP_LIBFUZZER
/* Inputs toward what decodes: mostly the true count (or one off), valid families, now and
 * then an IPv4-mapped IPv6 member (to be refused). */
static void shape(uint8_t *buf, size_t len, uint64_t r) {
  if (!(r % 4)) return;
  uint32_t elt = buf[0] & 1 ? sizeof(kp_wire_item_t) : sizeof(kp_wire_member_t);
  uint32_t n = (uint32_t)((len - 5) / elt) + (uint32_t)(r % 3) - 1;
  buf[0] &= 0x7f;
  memcpy(buf + 1, &n, 4);
  if (buf[0] & 1 || !(r % 8)) return;
  for (size_t j = 5; j < len; j += elt) {
    buf[j] &= 1;
    if (buf[j] && j + 13 <= len && buf[j + 3] < 8) kp_fuzz_v4_mapped(buf + j + 1);
  }
}

int main(int argc, char **argv) {
  unsigned long runs = kp_fuzz_drive(argc, argv, 5, 1024, run, shape);
  printf("fuzz_wire: %lu inputs, no invariant broken; decoded members %lu, items %lu, refused %lu\n", runs,
         reached[0], reached[1], reached[2]);
  return 0;
}
#endif
