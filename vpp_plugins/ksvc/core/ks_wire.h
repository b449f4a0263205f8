/*
 * The ksvc API messages' addresses and backend arrays as they arrive from
 * the socket (packed, network byte order, vppapigen's layout of ksvc.api's
 * ksvc_backend; the glue checks it at compile time), decoded here without VPP
 * headers so that the decoding is fuzzed with the core (fuzz_wire.c).
 */
#ifndef KS_WIRE_H
#define KS_WIRE_H

#include <stdint.h>

#include "../../common/kp_wire.h"
#include "ksvc_core.h"

typedef struct __attribute__((packed)) {
  kp_wire_addr_t addr;
  uint16_t port; /* network byte order */
} ks_wire_backend_t;

/* KS_OK, or KS_E_INVAL for an unknown family or an IPv4-mapped IPv6 address (the core holds
 * IPv4 in that form: it would come back as IPv4). */
int ks_wire_addr(const kp_wire_addr_t *in, ks_addr_t *out);
void ks_wire_encode_addr(const ks_addr_t *in, kp_wire_addr_t *out);
/* n backends of ``in`` into ``out`` (room for n) when n <= KS_MAX_BACKENDS and they fit in the
 * ``avail`` bytes that arrived; KS_E_INVAL otherwise, or for a bad address (then *failed_at,
 * if not NULL, is its index; else ~0). */
int ks_wire_backends(const void *in, uint64_t avail, uint32_t n, ks_backend_t *out, uint32_t *failed_at);
void ks_wire_encode_backend(const ks_backend_t *in, ks_wire_backend_t *out);

#endif
