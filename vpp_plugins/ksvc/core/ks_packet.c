/*
 * Packet helpers on raw bytes: parsing IPv4/IPv6 with TCP/UDP/SCTP, and
 * rewriting one address and port with incremental checksum updates
 * (RFC 1624: HC' = ~(~HC + ~m + m')). SCTP carries a CRC32c over the whole
 * SCTP packet, which no incremental update exists for: it is recomputed.
 */
#include <string.h>

#include "ks_internal.h"

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static int l4_hdr_len(uint8_t proto) {
  switch (proto) {
  case 6: return 20;
  case 17: return 8;
  case 132: return 12;
  default: return 0;
  }
}

static int finish(const uint8_t *h, uint32_t avail, ks_packet_t *p, uint32_t off, uint8_t proto) {
  int need = l4_hdr_len(proto);
  if (!need || off + (uint32_t)need > avail) return 0;
  if (proto == 6 && (uint32_t)(h[off + 12] >> 4) * 4 < 20) return 0; /* TCP data offset < 5 */
  if (off + (uint32_t)need > p->l3_len) return 0;
  p->proto = proto;
  p->l4_off = (uint16_t)off;
  p->sport = rd16(h + off);
  p->dport = rd16(h + off + 2);
  return 1;
}

int ks_parse(const uint8_t *h, uint32_t avail, ks_packet_t *p) {
  memset(p, 0, sizeof(*p));
  if (avail < 1) return 0;
  uint8_t ver = h[0] >> 4;
  if (ver == 4) {
    if (avail < 20) return 0;
    uint32_t ihl = (uint32_t)(h[0] & 0xf) * 4;
    if (ihl < 20 || ihl > avail) return 0;
    uint16_t frag = rd16(h + 6);
    if (frag & 0x3fff) return 0; /* MF or an offset: fragments are not translated */
    p->l3_len = rd16(h + 2);
    if (p->l3_len < ihl) return 0;
    ks_addr_from_v4(&p->src, h + 12);
    ks_addr_from_v4(&p->dst, h + 16);
    return finish(h, avail, p, ihl, h[9]);
  }
  if (ver == 6) {
    if (avail < 40) return 0;
    p->is_ip6 = 1;
    p->l3_len = 40u + rd16(h + 4);
    ks_addr_from_v6(&p->src, h + 8);
    ks_addr_from_v6(&p->dst, h + 24);
    uint8_t next = h[6];
    uint32_t off = 40;
    /* a few extension headers, bounded; a fragment header means no ports */
    for (int i = 0; i < 4 && (next == 0 || next == 43 || next == 60); i++) {
      if (off + 8 > avail) return 0;
      next = h[off];
      off += ((uint32_t)h[off + 1] + 1) * 8;
    }
    if (next == 44) return 0;
    return finish(h, avail, p, off, next);
  }
  return 0;
}

/* Ones-complement sum helpers on host-order 16-bit words. */
static inline uint32_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

/* Adds "replace old by new" over n bytes (n even) to a running sum. */
static inline uint32_t sum_update(uint32_t s, const uint8_t *old, const uint8_t *new_, int n) {
  for (int i = 0; i < n; i += 2) {
    s += (uint16_t)~rd16(old + i);
    s += rd16(new_ + i);
  }
  return s;
}

/* Applies a replacement to a full (complemented) checksum field. */
static inline uint16_t csum_full(uint16_t c, const uint8_t *old, const uint8_t *new_, int n) {
  return (uint16_t)~fold(sum_update((uint16_t)~c, old, new_, n));
}

/* CRC32c (Castagnoli, reflected), four bits at a time: a constant table, so
 * no initialisation and nothing shared that a thread could race on. */
static const uint32_t CRC_NIBBLE[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u, 0x417b1dbcu, 0x5125dad3u,
    0x61c69362u, 0x7198540du, 0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

uint32_t ks_crc32c(const uint8_t *d, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= d[i];
    c = (c >> 4) ^ CRC_NIBBLE[c & 0xf];
    c = (c >> 4) ^ CRC_NIBBLE[c & 0xf];
  }
  return ~c;
}

int ks_rewrite(uint8_t *h, uint32_t avail, const ks_packet_t *p, int is_dst, const ks_addr_t *a,
               uint16_t port, int l4_partial) {
  int need = l4_hdr_len(p->proto);
  if (!need || (uint32_t)p->l4_off + (uint32_t)need > avail) return -1;
  if (ks_addr_is_v4(a) == p->is_ip6) return -1;
  if (p->proto == 132 && (p->l3_len > avail || p->l3_len < (uint32_t)p->l4_off + 12)) return -1;
  uint8_t *l4 = h + p->l4_off;
  uint8_t *addr = p->is_ip6 ? h + (is_dst ? 24 : 8) : h + (is_dst ? 16 : 12);
  const uint8_t *na = p->is_ip6 ? a->b : a->b + 12;
  int alen = p->is_ip6 ? 16 : 4;
  uint8_t *pp = l4 + (is_dst ? 2 : 0);
  uint8_t np[2];
  wr16(np, port);

  if (!p->is_ip6) wr16(h + 10, csum_full(rd16(h + 10), addr, na, alen));
  if (p->proto == 132) {
    memcpy(addr, na, (size_t)alen);
    memcpy(pp, np, 2);
    memset(l4 + 8, 0, 4);
    uint32_t crc = ks_crc32c(l4, p->l3_len - p->l4_off);
    l4[8] = (uint8_t)crc; /* stored least significant byte first (RFC 4960 B) */
    l4[9] = (uint8_t)(crc >> 8);
    l4[10] = (uint8_t)(crc >> 16);
    l4[11] = (uint8_t)(crc >> 24);
    return 0;
  }
  uint8_t *ck = l4 + (p->proto == 6 ? 16 : 6);
  uint16_t c = rd16(ck);
  if (l4_partial) {
    /* the field holds the uncomplemented pseudo-header sum; ports are data */
    wr16(ck, (uint16_t)fold(sum_update(c, addr, na, alen)));
  } else if (!(p->proto == 17 && !p->is_ip6 && c == 0)) { /* IPv4 UDP without checksum stays so */
    uint32_t s = sum_update((uint16_t)~c, addr, na, alen);
    s = sum_update(s, pp, np, 2);
    uint16_t nc = (uint16_t)~fold(s);
    if (p->proto == 17 && nc == 0) nc = 0xffff;
    wr16(ck, nc);
  }
  memcpy(addr, na, (size_t)alen);
  memcpy(pp, np, 2);
  return 0;
}
