/*
 * Fuzz target of the kpol core: bytes become a sequence of set, member,
 * policy, attach, packet and expiry operations (including malformed ones),
 * and every step is cross-checked against a plain shadow model:
 *  - member add/del return codes and membership (hash and LPM) against
 *    linear scans of the shadow's member lists;
 *  - a packet verdict that was not answered from the flow table equals the
 *    stateless kp_evaluate of the attached policy;
 *  - the flow table never holds more than its bound.
 * Built with clang -fsanitize=fuzzer for libFuzzer, or with gcc as a
 * deterministic random driver: ./fuzz [seconds] [seed].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/kp_fuzz_driver.h"
#include "kpol_core.h"

#define NSETS 8
#define NPOL 4
#define NIF 4
#define MAXM 64
#define MAX_FLOWS 4

/* what the inputs reached, so a driver run can show it explored the states */
static unsigned long reached[6];

typedef struct {
  int kind; /* 0 = absent */
  int n;
  kp_member_t m[MAXM];
} shadow_set_t;

typedef struct {
  const uint8_t *p;
  size_t n;
} input_t;

static uint8_t take(input_t *in) {
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

static void abort_with(const char *what) {
  fprintf(stderr, "fuzz invariant broken: %s\n", what);
  abort();
}

/* Addresses from a small universe so that members, prefixes and packets meet. */
static void take_addr(input_t *in, kp_addr_t *a) {
  uint8_t b = take(in);
  if (b & 0x80) {
    uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (uint8_t)(b & 1), (uint8_t)(b & 2)};
    kp_addr_from_v6(a, v6);
  } else {
    uint8_t v4[4] = {10, 0, (uint8_t)(b & 1), (uint8_t)((b >> 1) & 3)};
    kp_addr_from_v4(a, v4);
  }
}

static int width_of(const kp_addr_t *a) { return kp_addr_is_v4(a) ? 32 : 128; }

static int prefix_covers(const kp_member_t *m, const kp_addr_t *a) {
  if (kp_addr_is_v4(&m->addr) != kp_addr_is_v4(a)) return 0;
  int off = kp_addr_is_v4(a) ? 96 : 0;
  for (int i = 0; i < m->plen; i++) {
    int bit = off + i;
    if (((m->addr.b[bit >> 3] ^ a->b[bit >> 3]) >> (7 - (bit & 7))) & 1) return 0;
  }
  return 1;
}

static int host_bits_clear(const kp_member_t *m) {
  int w = width_of(&m->addr), off = w == 32 ? 96 : 0;
  for (int i = m->plen; i < w; i++) {
    int bit = off + i;
    if ((m->addr.b[bit >> 3] >> (7 - (bit & 7))) & 1) return 0;
  }
  return 1;
}

static int same_member(int kind, const kp_member_t *x, const kp_member_t *y) {
  if (memcmp(x->addr.b, y->addr.b, 16) != 0) return 0;
  if (kind == KP_SET_NET) return x->plen == y->plen && x->exclude == y->exclude;
  if (kind == KP_SET_ADDR_PORT) return x->proto == y->proto && x->port == y->port;
  return 1;
}

static int shadow_has(const shadow_set_t *s, const kp_member_t *m) {
  for (int i = 0; i < s->n; i++)
    if (same_member(s->kind, &s->m[i], m)) return i;
  return -1;
}

static int shadow_contains(const shadow_set_t *s, const kp_addr_t *a, uint8_t proto, uint16_t port) {
  if (s->kind == KP_SET_NET) {
    int best = -1, marks = 0;
    for (int i = 0; i < s->n; i++) {
      if (!prefix_covers(&s->m[i], a)) continue;
      int mark = s->m[i].exclude ? 2 : 1;
      if (s->m[i].plen > best) {
        best = s->m[i].plen;
        marks = mark;
      } else if (s->m[i].plen == best) {
        marks |= mark;
      }
    }
    return marks == 1;
  }
  for (int i = 0; i < s->n; i++) {
    if (memcmp(s->m[i].addr.b, a->b, 16) != 0) continue;
    if (s->kind == KP_SET_ADDR || (s->m[i].proto == proto && s->m[i].port == port)) return 1;
  }
  return 0;
}

static void take_member(input_t *in, int kind, kp_member_t *m) {
  memset(m, 0, sizeof(*m));
  take_addr(in, &m->addr);
  if (kind == KP_SET_NET) {
    uint8_t b = take(in);
    int w = width_of(&m->addr);
    m->plen = (uint8_t)(b % (w + 2)); /* sometimes one past the width */
    m->exclude = (b >> 7) & 1;
    /* mostly well-formed: clear host bits unless the input asks otherwise */
    if (!(take(in) & 1) && m->plen <= w) {
      int off = w == 32 ? 96 : 0;
      for (int i = m->plen; i < w; i++) m->addr.b[(off + i) >> 3] &= (uint8_t)~(0x80 >> ((off + i) & 7));
    }
  } else if (kind == KP_SET_ADDR_PORT) {
    m->proto = (take(in) & 1) ? 6 : 17;
    m->port = (uint16_t)(take(in) % 4 + 80);
  }
}

/* A set id for a rule: mostly an existing set of the right kind, so that
 * policies install and packets meet them; sometimes anything at all. */
static uint32_t pick_ref(input_t *in, const shadow_set_t *sets, int want_addr_port) {
  uint8_t b = take(in);
  uint32_t id = b % (NSETS + 1);
  if (b & 0x80) return id;
  for (uint32_t k = 0; k < NSETS; k++) {
    uint32_t c = (id + k) % NSETS;
    if (sets[c].kind && (sets[c].kind == KP_SET_ADDR_PORT) == want_addr_port) return c;
  }
  return id;
}

static void run(const uint8_t *data, size_t size) {
  input_t in = {data, size};
  shadow_set_t sets[NSETS];
  memset(sets, 0, sizeof(sets));
  kp_tables_t *t = kp_tables_new(1, 0x5eed);
  kp_timeouts_t to = {.tcp = 50, .udp = 20, .other = 10};
  kp_worker_t *w = kp_worker_new(0, MAX_FLOWS, &to, 0xf00d);
  uint64_t now = 0;
  kp_packet_t last;
  kp_dir_t last_dir = KP_INGRESS;
  uint32_t last_sw = 0;
  int have_last = 0;
  memset(&last, 0, sizeof(last));
  while (in.n) {
    uint8_t op = take(&in) % 12;
    uint32_t id = take(&in) % (NSETS + 1); /* NSETS is never a valid set */
    switch (op) {
    case 0: {
      int kind = take(&in) % 4;
      int rv = kp_set_add(t, id, (kp_set_kind_t)kind);
      int want = kind == 0 ? KP_E_INVAL : id < NSETS && sets[id].kind ? KP_E_EXISTS : KP_OK;
      if (id == NSETS && kind) want = KP_OK; /* id 8 is a real id for the core */
      if (rv != want) abort_with("set add code");
      if (rv == KP_OK && id < NSETS) sets[id] = (shadow_set_t){.kind = kind};
      if (rv == KP_OK && id == NSETS) kp_set_del(t, id);
      break;
    }
    case 1: {
      int rv = kp_set_del(t, id);
      if (id < NSETS && rv == KP_OK) sets[id].kind = 0, sets[id].n = 0;
      if (id < NSETS && !sets[id].kind && rv != KP_OK && rv != KP_E_NOENT) abort_with("set del code");
      break;
    }
    case 2:
    case 3: {
      if (id >= NSETS || !sets[id].kind) {
        kp_member_t m;
        take_member(&in, KP_SET_ADDR, &m);
        if ((op == 2 ? kp_set_member_add(t, id, &m) : kp_set_member_del(t, id, &m)) != KP_E_NOENT)
          abort_with("member op on absent set");
        break;
      }
      shadow_set_t *s = &sets[id];
      kp_member_t m;
      take_member(&in, s->kind, &m);
      int at = shadow_has(s, &m);
      int valid = s->kind != KP_SET_NET || (m.plen <= width_of(&m.addr) && host_bits_clear(&m));
      if (op == 2) {
        int rv = kp_set_member_add(t, id, &m);
        int want = !valid ? KP_E_INVAL : at >= 0 ? KP_E_EXISTS : KP_OK;
        if (rv != want) abort_with("member add code");
        if (rv == KP_OK) {
          if (s->n == MAXM) { /* keep the shadow bounded: undo */
            if (kp_set_member_del(t, id, &m)) abort_with("undo add");
          } else {
            s->m[s->n++] = m;
          }
        }
      } else {
        int rv = kp_set_member_del(t, id, &m);
        int want = !valid ? KP_E_INVAL : at < 0 ? KP_E_NOENT : KP_OK;
        if (rv != want) abort_with("member del code");
        if (rv == KP_OK) s->m[at] = s->m[--s->n];
      }
      break;
    }
    case 4: {
      /* batch add: all or nothing */
      if (id >= NSETS || !sets[id].kind) break;
      shadow_set_t *s = &sets[id];
      kp_member_t m[6];
      uint32_t n = take(&in) % 6, at;
      for (uint32_t i = 0; i < n; i++) take_member(&in, s->kind, &m[i]);
      uint32_t before = kp_set_size(t, id);
      int rv = kp_set_members_add(t, id, m, n, &at);
      if (rv != KP_OK) {
        if (kp_set_size(t, id) != before) abort_with("failed batch changed the set");
      } else {
        if (kp_set_members_del(t, id, m, n, &at) != KP_OK) abort_with("batch del of batch add");
      }
      if (kp_set_size(t, id) != before) abort_with("batch round trip changed the set");
      break;
    }
    case 5: {
      /* a policy with random rules; references may be absent or of the wrong kind */
      kp_rule_spec_t rules[2][4];
      uint32_t refs[2][4][3], pps[2][4][2];
      kp_port_range_t ports[2][4][2];
      kp_dir_spec_t ds[2];
      const kp_dir_spec_t *dirs[2] = {NULL, NULL};
      for (int d = 0; d < 2; d++) {
        uint8_t b = take(&in);
        if (!(b & 1)) continue;
        ds[d].n_rules = (b >> 1) % 5;
        ds[d].rules = rules[d];
        dirs[d] = &ds[d];
        for (uint32_t r = 0; r < ds[d].n_rules; r++) {
          kp_rule_spec_t *rs = &rules[d][r];
          uint8_t c = take(&in);
          memset(rs, 0, sizeof(*rs));
          rs->any_peer = (c & 7) == 0;
          rs->n_peers = rs->any_peer ? 0 : (c >> 2) % 4;
          rs->n_ports = (c >> 4) % 3;
          rs->n_peer_ports = (c >> 6) % 3;
          for (uint32_t k = 0; k < rs->n_peers; k++) refs[d][r][k] = pick_ref(&in, sets, 0);
          for (uint32_t k = 0; k < rs->n_peer_ports; k++) pps[d][r][k] = pick_ref(&in, sets, 1);
          for (uint32_t k = 0; k < rs->n_ports; k++) {
            uint8_t e = take(&in);
            ports[d][r][k] = (kp_port_range_t){.proto = (e & 1) ? 6 : (e & 2) ? 17 : 0,
                                               .lo = (uint16_t)(80 + (e >> 2) % 4),
                                               .hi = (uint16_t)(80 + (e >> 4) % 4)};
          }
          rs->peers = refs[d][r];
          rs->peer_ports = pps[d][r];
          rs->ports = ports[d][r];
        }
      }
      int rv = kp_policy_set(t, id % NPOL, dirs);
      if (rv != KP_OK && rv != KP_E_NOENT && rv != KP_E_KIND && rv != KP_E_INVAL)
        abort_with("policy set code");
      break;
    }
    case 6: {
      int rv = kp_policy_del(t, id % NPOL);
      if (rv != KP_OK && rv != KP_E_NOENT && rv != KP_E_BUSY) abort_with("policy del code");
      break;
    }
    case 7: {
      uint8_t b = take(&in);
      if (b & 1)
        kp_attach(t, id % NIF, (b >> 1) % (NPOL + 1));
      else
        kp_detach(t, id % NIF);
      break;
    }
    case 8: {
      /* a new packet, the last one again, or its reply (so flows are met) */
      kp_packet_t p;
      kp_dir_t dir;
      uint32_t sw;
      uint8_t how = take(&in) % 3;
      if (how == 0 || !have_last) {
        memset(&p, 0, sizeof(p));
        take_addr(&in, &p.src);
        take_addr(&in, &p.dst);
        uint8_t b = take(&in);
        p.proto = (b & 3) == 0 ? 6 : (b & 3) == 1 ? 17 : (b & 3) == 2 ? 1 : 132;
        if (p.proto != 1) {
          p.sport = (uint16_t)(1000 + (b >> 2) % 4);
          p.dport = (uint16_t)(80 + (b >> 4) % 4);
        }
        dir = (b >> 6) & 1 ? KP_EGRESS : KP_INGRESS;
        sw = id % NIF;
      } else if (how == 1) {
        p = last;
        dir = last_dir;
        sw = last_sw;
      } else {
        p = last;
        p.src = last.dst;
        p.dst = last.src;
        p.sport = last.dport;
        p.dport = last.sport;
        dir = last_dir == KP_INGRESS ? KP_EGRESS : KP_INGRESS;
        sw = last_sw;
      }
      last = p;
      last_dir = dir;
      last_sw = sw;
      have_last = 1;
      now += take(&in) % 8;
      kp_verdict_t v = kp_process(t, w, sw, dir, &p, now);
      reached[v.reason]++;
      reached[5] += v.flow_hit && v.reason != KP_REASON_REPLY;
      int64_t pol = kp_attached(t, sw);
      kp_verdict_t e = pol < 0 ? (kp_verdict_t){.allowed = 1, .reason = KP_REASON_NOT_ISOLATED, .rule = -1}
                               : kp_evaluate(t, (uint32_t)pol, dir, &p);
      if (!v.flow_hit && v.reason != KP_REASON_TABLE_FULL &&
          (e.allowed != v.allowed || e.rule != v.rule || e.reason != v.reason))
        abort_with("process differs from evaluate");
      /* only member adds leave cached flows valid, and they only grant (a NetSet's except
       * is an add that denies: the core re-evaluates flows after it) */
      if (v.flow_hit && v.reason != KP_REASON_REPLY && !e.allowed)
        abort_with("a cached flow outlived a change that denies it");
      if (v.reason == KP_REASON_REPLY && (!v.allowed || v.rule != -1)) abort_with("reply verdict");
      if (kp_worker_n_flows(w) > MAX_FLOWS) abort_with("flow table over its bound");
      break;
    }
    case 9:
      now += take(&in);
      kp_worker_expire(w, now, take(&in) % 8);
      break;
    case 11: {
      /* the API's flat item list: arbitrary items must be rejected or installed,
       * and an installed policy must read back to items that install the same */
      kp_item_t items[12], back[64], again[64];
      uint32_t n = take(&in) % 12;
      int iso[2] = {take(&in) & 1, take(&in) & 1}, iso_back[2], iso_again[2];
      for (uint32_t i = 0; i < n; i++) {
        uint8_t b = take(&in);
        items[i] = (kp_item_t){.type = (uint8_t)((b & 7) < 5 ? (b & 3) : (b & 7)), .dir = (uint8_t)((b >> 3) % 3),
                               .any_peer = (b >> 5) & 1, .proto = (b >> 6) ? 6 : 0,
                               .lo = (uint16_t)(80 + take(&in) % 3), .hi = 82,
                               .set_id = pick_ref(&in, sets, (b & 3) == KP_ITEM_PEER_PORT)};
      }
      uint32_t pid = id % NPOL;
      int rv = kp_policy_set_items(t, pid, iso, items, n);
      if (rv != KP_OK && rv != KP_E_INVAL && rv != KP_E_NOENT && rv != KP_E_KIND)
        abort_with("policy set items code");
      if (rv == KP_OK) {
        int64_t nb = kp_policy_get_items(t, pid, iso_back, back, 64);
        if (nb < 0 || nb > 64 || iso_back[0] != iso[0] || iso_back[1] != iso[1])
          abort_with("items read back");
        if (kp_policy_set_items(t, NPOL, iso_back, back, (uint32_t)nb) != KP_OK)
          abort_with("read-back items do not install");
        int64_t na = kp_policy_get_items(t, NPOL, iso_again, again, 64);
        if (na != nb || memcmp(back, again, (size_t)nb * sizeof(kp_item_t)) != 0)
          abort_with("items round trip");
        kp_policy_del(t, NPOL);
      }
      break;
    }
    case 10: {
      /* membership of the whole universe against the shadow */
      if (id >= NSETS || !sets[id].kind) break;
      for (int b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b;
        input_t u = {&one, 1};
        kp_addr_t a;
        take_addr(&u, &a);
        for (int pr = 0; pr < 2; pr++)
          for (uint16_t port = 80; port < 84; port++) {
            uint8_t proto = pr ? 6 : 17;
            if (kp_set_contains(t, id, &a, proto, port) != shadow_contains(&sets[id], &a, proto, port))
              abort_with("membership differs from linear scan");
          }
      }
      break;
    }
    }
  }
  kp_worker_free(w);
  kp_tables_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run(data, size);
  return 0;
}

#ifndef KP_LIBFUZZER
/* Fallback driver without libFuzzer: random inputs from a seed for a while. */
int main(int argc, char **argv) {
  unsigned long runs = kp_fuzz_drive(argc, argv, 64, 4096, run, NULL);
  printf("fuzz: %lu inputs, no invariant broken; verdicts: rule %lu, default-deny %lu, "
         "not-isolated %lu, reply %lu, table-full %lu, cached %lu\n",
         runs, reached[0], reached[1], reached[2], reached[3], reached[4], reached[5]);
  return 0;
}
#endif
