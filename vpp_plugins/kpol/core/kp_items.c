/*
 * The binary API's flat rule list <-> kp_rule_spec_t, with no VPP types so
 * that the fuzzer drives the same parser the API handler uses.
 */
#include <stdlib.h>
#include <string.h>

#include "kpol_core.h"

int kp_policy_set_items(kp_tables_t *t, uint32_t policy_id, const int isolated[2],
                        const kp_item_t *items, uint32_t n) {
  if (n > KP_MAX_ITEMS) return KP_E_RANGE;
  if (n && !items) return KP_E_INVAL;
  /* pass 1: validate, count */
  uint32_t n_rules[2] = {0, 0}, n_ids = 0, n_ports = 0;
  int cur = -1;
  for (uint32_t i = 0; i < n; i++) {
    const kp_item_t *it = &items[i];
    switch (it->type) {
    case KP_ITEM_RULE:
      if (it->dir > 1 || !isolated[it->dir] || it->any_peer > 1) return KP_E_INVAL;
      cur = it->dir;
      n_rules[cur]++;
      break;
    case KP_ITEM_PEER:
    case KP_ITEM_PEER_PORT:
      if (cur < 0) return KP_E_INVAL;
      n_ids++;
      break;
    case KP_ITEM_PORTS:
      if (cur < 0) return KP_E_INVAL;
      n_ports++;
      break;
    default:
      return KP_E_INVAL;
    }
  }
  /* pass 2: fill; each rule's lists are gathered from its items by kind */
  kp_rule_spec_t *rules = calloc(n_rules[0] + n_rules[1] + 1, sizeof(*rules));
  uint32_t *ids = malloc((n_ids + 1) * sizeof(*ids));
  kp_port_range_t *ports = malloc((n_ports + 1) * sizeof(*ports));
  int rv = KP_E_NOMEM;
  if (!rules || !ids || !ports) goto done;
  kp_rule_spec_t *next_rule[2] = {rules, rules + n_rules[0]};
  uint32_t id_at = 0, port_at = 0;
  for (uint32_t i = 0; i < n;) {
    const kp_item_t *head = &items[i];
    uint32_t end = i + 1;
    while (end < n && items[end].type != KP_ITEM_RULE) end++;
    kp_rule_spec_t *r = next_rule[head->dir]++;
    r->any_peer = head->any_peer;
    r->peers = ids + id_at;
    for (uint32_t k = i + 1; k < end; k++) {
      if (items[k].type != KP_ITEM_PEER) continue;
      ids[id_at++] = items[k].set_id;
      r->n_peers++;
    }
    r->peer_ports = ids + id_at;
    for (uint32_t k = i + 1; k < end; k++) {
      if (items[k].type != KP_ITEM_PEER_PORT) continue;
      ids[id_at++] = items[k].set_id;
      r->n_peer_ports++;
    }
    r->ports = ports + port_at;
    for (uint32_t k = i + 1; k < end; k++) {
      if (items[k].type != KP_ITEM_PORTS) continue;
      ports[port_at++] = (kp_port_range_t){items[k].proto, items[k].lo, items[k].hi};
      r->n_ports++;
    }
    i = end;
  }
  kp_dir_spec_t ds[2] = {{n_rules[0], rules}, {n_rules[1], rules + n_rules[0]}};
  const kp_dir_spec_t *dirs[2] = {isolated[0] ? &ds[0] : NULL, isolated[1] ? &ds[1] : NULL};
  rv = kp_policy_set(t, policy_id, dirs);
done:
  free(rules);
  free(ids);
  free(ports);
  return rv;
}

int64_t kp_policy_get_items(const kp_tables_t *t, uint32_t policy_id, int isolated[2],
                            kp_item_t *out, uint32_t cap) {
  int64_t n = 0;
  for (int d = 0; d < 2; d++) {
    int nr = kp_policy_n_rules(t, policy_id, (kp_dir_t)d);
    if (nr == KP_E_NOENT) return KP_E_NOENT;
    isolated[d] = nr >= 0;
    for (int i = 0; i < nr; i++) {
      kp_rule_spec_t r;
      kp_policy_rule(t, policy_id, (kp_dir_t)d, (uint32_t)i, &r);
#define EMIT(...)                                                                             \
  do {                                                                                        \
    if ((uint64_t)n < cap) out[n] = (kp_item_t){__VA_ARGS__};                                 \
    n++;                                                                                      \
  } while (0)
      EMIT(.type = KP_ITEM_RULE, .dir = (uint8_t)d, .any_peer = r.any_peer);
      for (uint32_t k = 0; k < r.n_peers; k++)
        EMIT(.type = KP_ITEM_PEER, .dir = (uint8_t)d, .set_id = r.peers[k]);
      for (uint32_t k = 0; k < r.n_ports; k++)
        EMIT(.type = KP_ITEM_PORTS, .dir = (uint8_t)d, .proto = r.ports[k].proto,
             .lo = r.ports[k].lo, .hi = r.ports[k].hi);
      for (uint32_t k = 0; k < r.n_peer_ports; k++)
        EMIT(.type = KP_ITEM_PEER_PORT, .dir = (uint8_t)d, .set_id = r.peer_ports[k]);
#undef EMIT
    }
  }
  return n;
}
