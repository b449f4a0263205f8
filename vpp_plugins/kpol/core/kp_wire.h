/*
 * The kpol API messages' variable parts as they arrive from the socket:
 * packed, network byte order, exactly vppapigen's layout of kpol.api's
 * kpol_member and kpol_item (the glue checks sizes and offsets at compile
 * time). Decoding lives here, without VPP headers, so that it is unit-tested
 * and fuzzed with the rest of the core: a message's count is checked against
 * the bytes that really arrived before anything is read.
 */
#ifndef KP_WIRE_H
#define KP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/kp_wire.h"
#include "kpol_core.h"

/* Upper bound on members or items in one message: bounds what one message can make
 * a handler allocate. */
#define KP_WIRE_MAX_BATCH (1u << 20)

typedef struct __attribute__((packed)) {
  kp_wire_addr_t addr;
  uint8_t plen;
  uint8_t exclude;
  uint8_t proto;
  uint16_t port;   /* network byte order */
} kp_wire_member_t;

typedef struct __attribute__((packed)) {
  uint8_t type;
  uint8_t dir;
  uint8_t any_peer;
  uint8_t proto;
  uint16_t lo, hi;  /* network byte order */
  uint32_t set_id;  /* network byte order */
} kp_wire_item_t;

/* n elements of ``in`` into ``out`` (room for n), when n <= KP_WIRE_MAX_BATCH and n of them
 * fit in the ``avail`` bytes that arrived. KP_E_INVAL otherwise, or for a member of an
 * unknown address family, or an IPv6 member inside ::ffff:0:0/96 (then *failed_at, if not
 * NULL, is its index; else ~0). The core keeps IPv4 addresses in their IPv4-mapped IPv6
 * form, so such a member would silently become an IPv4 one (found by fuzz_wire.c). */
int kp_wire_members(const void *in, uint64_t avail, uint32_t n, kp_member_t *out, uint32_t *failed_at);
int kp_wire_items(const void *in, uint64_t avail, uint32_t n, kp_item_t *out);
void kp_wire_encode_member(const kp_member_t *in, kp_wire_member_t *out);
void kp_wire_encode_item(const kp_item_t *in, kp_wire_item_t *out);

#endif
