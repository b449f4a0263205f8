/* Decoding and encoding of kpol's API message elements (see kp_wire.h). */
#include "kp_wire.h"

#include <string.h>

int kp_wire_members(const void *in, uint64_t avail, uint32_t n, kp_member_t *out, uint32_t *failed_at) {
  if (failed_at) *failed_at = ~0u;
  if (!kp_wire_fits(avail, n, sizeof(kp_wire_member_t), KP_WIRE_MAX_BATCH)) return KP_E_INVAL;
  for (uint32_t i = 0; i < n; i++) {
    kp_wire_member_t w;
    memcpy(&w, (const uint8_t *)in + (uint64_t)i * sizeof(w), sizeof(w)); /* unaligned in the message */
    kp_member_t *m = &out[i];
    memset(m, 0, sizeof(*m));
    if (!kp_wire_addr_ok(&w.addr)) {
      if (failed_at) *failed_at = i;
      return KP_E_INVAL;
    }
    if (w.addr.af == KP_WIRE_AF_IP4)
      kp_addr_from_v4(&m->addr, w.addr.un);
    else
      kp_addr_from_v6(&m->addr, w.addr.un);
    m->plen = w.plen;
    m->exclude = w.exclude ? 1 : 0;
    m->proto = w.proto;
    m->port = kp_wire_be16(w.port);
  }
  return KP_OK;
}

int kp_wire_items(const void *in, uint64_t avail, uint32_t n, kp_item_t *out) {
  if (!kp_wire_fits(avail, n, sizeof(kp_wire_item_t), KP_WIRE_MAX_BATCH)) return KP_E_INVAL;
  for (uint32_t i = 0; i < n; i++) {
    kp_wire_item_t w;
    memcpy(&w, (const uint8_t *)in + (uint64_t)i * sizeof(w), sizeof(w));
    out[i] = (kp_item_t){.type = w.type, .dir = w.dir, .any_peer = w.any_peer ? 1 : 0, .proto = w.proto,
                         .lo = kp_wire_be16(w.lo), .hi = kp_wire_be16(w.hi), .set_id = kp_wire_be32(w.set_id)};
  }
  return KP_OK;
}

void kp_wire_encode_member(const kp_member_t *in, kp_wire_member_t *out) {
  memset(out, 0, sizeof(*out));
  if (kp_addr_is_v4(&in->addr)) {
    out->addr.af = KP_WIRE_AF_IP4;
    memcpy(out->addr.un, in->addr.b + 12, 4);
  } else {
    out->addr.af = KP_WIRE_AF_IP6;
    memcpy(out->addr.un, in->addr.b, 16);
  }
  out->plen = in->plen;
  out->exclude = in->exclude;
  out->proto = in->proto;
  out->port = kp_wire_be16(in->port);
}

void kp_wire_encode_item(const kp_item_t *in, kp_wire_item_t *out) {
  memset(out, 0, sizeof(*out));
  out->type = in->type;
  out->dir = in->dir;
  out->any_peer = in->any_peer;
  out->proto = in->proto;
  out->lo = kp_wire_be16(in->lo);
  out->hi = kp_wire_be16(in->hi);
  out->set_id = kp_wire_be32(in->set_id);
}
