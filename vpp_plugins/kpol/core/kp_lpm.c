/* Prefix trie with include/exclude marks; see kp_lpm.h. */
#include "kp_lpm.h"

#include <stdlib.h>
#include <string.h>

#define NIL 0u

static uint32_t node_new(kp_lpm_t *l) {
  uint32_t i;
  if (l->free_head != NIL) {
    i = l->free_head;
    l->free_head = l->nodes[i].child[0];
  } else {
    if (l->n_nodes == l->cap) {
      uint32_t ncap = l->cap ? l->cap * 2 : 64;
      kp_lpm_node_t *n = realloc(l->nodes, (size_t)ncap * sizeof(*n));
      if (!n) return NIL;
      l->nodes = n;
      l->cap = ncap;
    }
    i = l->n_nodes++;
  }
  memset(&l->nodes[i], 0, sizeof(l->nodes[i]));
  return i;
}

static void node_release(kp_lpm_t *l, uint32_t i) {
  l->nodes[i].child[0] = l->free_head;
  l->nodes[i].child[1] = NIL;
  l->nodes[i].marks = 0;
  l->free_head = i;
}

int kp_lpm_init(kp_lpm_t *l) {
  memset(l, 0, sizeof(*l));
  /* node 0 is a sentinel so that child index 0 can mean "none" */
  if (node_new(l) != 0) return KP_E_NOMEM;
  l->root[0] = node_new(l);
  l->root[1] = node_new(l);
  if (l->root[0] == NIL || l->root[1] == NIL) {
    kp_lpm_free(l);
    return KP_E_NOMEM;
  }
  return KP_OK;
}

void kp_lpm_free(kp_lpm_t *l) {
  free(l->nodes);
  memset(l, 0, sizeof(*l));
}

static inline const uint8_t *fam_bytes(const kp_addr_t *a, int *fam, unsigned *width) {
  if (kp_addr_is_v4(a)) {
    *fam = 0;
    *width = 32;
    return a->b + 12;
  }
  *fam = 1;
  *width = 128;
  return a->b;
}

static inline unsigned bit_at(const uint8_t *p, unsigned i) { return (p[i >> 3] >> (7 - (i & 7))) & 1u; }

int kp_lpm_prefix_valid(const kp_addr_t *a, uint8_t plen) {
  int fam;
  unsigned width;
  const uint8_t *p = fam_bytes(a, &fam, &width);
  if (plen > width) return KP_E_INVAL;
  for (unsigned i = plen; i < width; i++)
    if (bit_at(p, i)) return KP_E_INVAL;
  return KP_OK;
}

int kp_lpm_add(kp_lpm_t *l, const kp_addr_t *a, uint8_t plen, uint8_t mark) {
  int fam;
  unsigned width;
  const uint8_t *p = fam_bytes(a, &fam, &width);
  if (plen > width || (mark != KP_LPM_INCLUDE && mark != KP_LPM_EXCLUDE)) return KP_E_INVAL;
  /* Host bits must be zero: "10.0.0.1/8" is a malformed prefix, not 10/8. */
  for (unsigned i = plen; i < width; i++)
    if (bit_at(p, i)) return KP_E_INVAL;
  /* Check first so a failed add allocates nothing that must be undone. */
  uint32_t n = l->root[fam];
  unsigned d = 0;
  while (d < plen && l->nodes[n].child[bit_at(p, d)] != NIL) n = l->nodes[n].child[bit_at(p, d++)];
  if (d == plen && (l->nodes[n].marks & mark)) return KP_E_EXISTS;
  /* Reserve every node the path needs before linking any of them. */
  uint32_t need = plen - d;
  uint32_t made[129];
  for (uint32_t k = 0; k < need; k++) {
    made[k] = node_new(l);
    if (made[k] == NIL) {
      while (k--) node_release(l, made[k]);
      return KP_E_NOMEM;
    }
  }
  for (uint32_t k = 0; k < need; k++, d++) {
    l->nodes[n].child[bit_at(p, d)] = made[k];
    n = made[k];
  }
  l->nodes[n].marks |= mark;
  l->n_prefixes++;
  return KP_OK;
}

int kp_lpm_del(kp_lpm_t *l, const kp_addr_t *a, uint8_t plen, uint8_t mark) {
  int fam;
  unsigned width;
  const uint8_t *p = fam_bytes(a, &fam, &width);
  if (plen > width || (mark != KP_LPM_INCLUDE && mark != KP_LPM_EXCLUDE)) return KP_E_INVAL;
  /* same rule as add, or "10.0.0.1/8" would delete 10.0.0.0/8 */
  for (unsigned i = plen; i < width; i++)
    if (bit_at(p, i)) return KP_E_INVAL;
  uint32_t path[129];
  uint32_t n = l->root[fam];
  path[0] = n;
  for (unsigned d = 0; d < plen; d++) {
    n = l->nodes[n].child[bit_at(p, d)];
    if (n == NIL) return KP_E_NOENT;
    path[d + 1] = n;
  }
  if (!(l->nodes[n].marks & mark)) return KP_E_NOENT;
  l->nodes[n].marks &= (uint8_t)~mark;
  l->n_prefixes--;
  /* Prune unmarked leaves back up to (never including) the root. */
  for (unsigned d = plen; d > 0; d--) {
    kp_lpm_node_t *x = &l->nodes[path[d]];
    if (x->marks || x->child[0] || x->child[1]) break;
    l->nodes[path[d - 1]].child[bit_at(p, d - 1)] = NIL;
    node_release(l, path[d]);
  }
  return KP_OK;
}

int kp_lpm_member(const kp_lpm_t *l, const kp_addr_t *a) {
  int fam;
  unsigned width;
  const uint8_t *p = fam_bytes(a, &fam, &width);
  const kp_lpm_node_t *nodes = l->nodes;
  uint32_t n = l->root[fam];
  uint8_t best = nodes[n].marks;
  for (unsigned d = 0; d < width; d++) {
    n = nodes[n].child[bit_at(p, d)];
    if (n == NIL) break;
    if (nodes[n].marks) best = nodes[n].marks;
  }
  return best == KP_LPM_INCLUDE;
}

static int walk(const kp_lpm_t *l, uint32_t n, int fam, uint8_t *bits, unsigned depth,
                kp_lpm_fn fn, void *ctx) {
  const kp_lpm_node_t *x = &l->nodes[n];
  if (x->marks) {
    kp_addr_t a;
    if (fam == 0)
      kp_addr_from_v4(&a, bits);
    else
      kp_addr_from_v6(&a, bits);
    for (uint8_t m = KP_LPM_INCLUDE; m <= KP_LPM_EXCLUDE; m <<= 1)
      if ((x->marks & m) && fn(&a, (uint8_t)depth, m, ctx)) return 1;
  }
  for (unsigned c = 0; c < 2; c++) {
    if (x->child[c] == NIL) continue;
    if (c) bits[depth >> 3] |= (uint8_t)(0x80 >> (depth & 7));
    int stop = walk(l, x->child[c], fam, bits, depth + 1, fn, ctx);
    if (c) bits[depth >> 3] &= (uint8_t) ~(0x80 >> (depth & 7));
    if (stop) return 1;
  }
  return 0;
}

int kp_lpm_walk(const kp_lpm_t *l, kp_lpm_fn fn, void *ctx) {
  uint8_t bits[16];
  for (int fam = 0; fam < 2; fam++) {
    memset(bits, 0, sizeof(bits));
    if (walk(l, l->root[fam], fam, bits, 0, fn, ctx)) return 1;
  }
  return 0;
}
