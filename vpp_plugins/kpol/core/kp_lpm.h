/*
 * Binary trie for prefix sets with exclusions (Kubernetes ipBlock cidr +
 * except).
 *
 * Owns: one trie per address family (IPv4: 32 levels over the last 4 bytes of
 * the mapped address; IPv6: 128 levels), node pool with a free list, pruning
 * of empty branches on delete. An address is a member iff the longest prefix
 * that carries a mark is an include; a prefix marked both ways counts as
 * excluded. Lookup cost is bounded by the address width, never by the
 * number of prefixes.
 */
#ifndef KP_LPM_H
#define KP_LPM_H

#include <stdint.h>

#include "kpol_core.h"

#define KP_LPM_INCLUDE 1u
#define KP_LPM_EXCLUDE 2u

typedef struct {
  uint32_t child[2]; /* 0 = none (node 0 is never a child) */
  uint8_t marks;
} kp_lpm_node_t;

typedef struct {
  kp_lpm_node_t *nodes;
  uint32_t n_nodes, cap, free_head;
  uint32_t root[2]; /* [0] IPv4, [1] IPv6 */
  uint32_t n_prefixes;
} kp_lpm_t;

int kp_lpm_init(kp_lpm_t *l);
void kp_lpm_free(kp_lpm_t *l);
/* mark is KP_LPM_INCLUDE or KP_LPM_EXCLUDE; plen is in the family's bits. */
int kp_lpm_add(kp_lpm_t *l, const kp_addr_t *a, uint8_t plen, uint8_t mark);
int kp_lpm_del(kp_lpm_t *l, const kp_addr_t *a, uint8_t plen, uint8_t mark);
int kp_lpm_member(const kp_lpm_t *l, const kp_addr_t *a);
/* KP_OK when addr/plen is a well-formed prefix (length fits, no host bits). */
int kp_lpm_prefix_valid(const kp_addr_t *a, uint8_t plen);
typedef int (*kp_lpm_fn)(const kp_addr_t *a, uint8_t plen, uint8_t mark, void *ctx);
int kp_lpm_walk(const kp_lpm_t *l, kp_lpm_fn fn, void *ctx);

#endif
