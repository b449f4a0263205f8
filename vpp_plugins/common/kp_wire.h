/*
 * What both plugins' API messages share on the wire, without VPP headers:
 * vl_api_address_t as vppapigen lays it out (packed: a one-byte family, then
 * a 16-byte union with IPv4 in its first 4 bytes), network byte order, and
 * the check every variable-length message needs: its claimed element count
 * against the bytes that really arrived. Each plugin's glue asserts at
 * compile time that these structs are the generated ones.
 */
#ifndef KP_WIRE_COMMON_H
#define KP_WIRE_COMMON_H

#include <stdint.h>
#include <string.h>

#define KP_WIRE_AF_IP4 0 /* vl_api_address_family_t */
#define KP_WIRE_AF_IP6 1

typedef struct __attribute__((packed)) {
  uint8_t af;
  uint8_t un[16];
} kp_wire_addr_t;

/* Big-endian to host and back (the same swap either way, on either byte order). */
static inline uint16_t kp_wire_be16(uint16_t v) {
  const uint8_t *b = (const uint8_t *)&v;
  return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t kp_wire_be32(uint32_t v) {
  const uint8_t *b = (const uint8_t *)&v;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Whether n elements of elt_size fit in the avail bytes after a message's fixed part,
 * with n at most max (bounds what one message can make a handler allocate). */
static inline int kp_wire_fits(uint64_t avail, uint32_t n, uint64_t elt_size, uint32_t max) {
  return n <= max && (uint64_t)n * elt_size <= avail;
}

/* Whether an IPv6 address is IPv4-mapped (::ffff:a.b.c.d). Both cores keep IPv4 addresses
 * in that form, so such an IPv6 address sent by a client would silently become IPv4:
 * the decoders refuse it. */
static inline int kp_wire_v4_mapped(const uint8_t v6[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(v6, prefix, sizeof(prefix)) == 0;
}

/* An address a core can hold as sent: a known family, no IPv4-mapped IPv6. */
static inline int kp_wire_addr_ok(const kp_wire_addr_t *a) {
  return a->af == KP_WIRE_AF_IP4 || (a->af == KP_WIRE_AF_IP6 && !kp_wire_v4_mapped(a->un));
}

#endif
