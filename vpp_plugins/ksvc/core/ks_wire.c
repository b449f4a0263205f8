/* Decoding and encoding of ksvc's API addresses and backends (see ks_wire.h). */
#include "ks_wire.h"

#include <string.h>

int ks_wire_addr(const kp_wire_addr_t *in, ks_addr_t *out) {
  if (!kp_wire_addr_ok(in)) return KS_E_INVAL;
  if (in->af == KP_WIRE_AF_IP4)
    ks_addr_from_v4(out, in->un);
  else
    ks_addr_from_v6(out, in->un);
  return KS_OK;
}

void ks_wire_encode_addr(const ks_addr_t *in, kp_wire_addr_t *out) {
  memset(out, 0, sizeof(*out));
  if (ks_addr_is_v4(in)) {
    out->af = KP_WIRE_AF_IP4;
    memcpy(out->un, in->b + 12, 4);
  } else {
    out->af = KP_WIRE_AF_IP6;
    memcpy(out->un, in->b, 16);
  }
}

int ks_wire_backends(const void *in, uint64_t avail, uint32_t n, ks_backend_t *out, uint32_t *failed_at) {
  if (failed_at) *failed_at = ~0u;
  if (!kp_wire_fits(avail, n, sizeof(ks_wire_backend_t), KS_MAX_BACKENDS)) return KS_E_INVAL;
  for (uint32_t i = 0; i < n; i++) {
    ks_wire_backend_t w;
    memcpy(&w, (const uint8_t *)in + (uint64_t)i * sizeof(w), sizeof(w)); /* unaligned in the message */
    memset(&out[i], 0, sizeof(out[i]));
    if (ks_wire_addr(&w.addr, &out[i].addr) != KS_OK) {
      if (failed_at) *failed_at = i;
      return KS_E_INVAL;
    }
    out[i].port = kp_wire_be16(w.port);
  }
  return KS_OK;
}

void ks_wire_encode_backend(const ks_backend_t *in, ks_wire_backend_t *out) {
  ks_wire_encode_addr(&in->addr, &out->addr);
  out->port = kp_wire_be16(in->port);
}
