/*
 * kpol core: the Kubernetes network-policy engine without any VPP headers.
 *
 * Owns: ipsets (address hash, prefix LPM with exclusions, address+proto+port
 * hash) with incremental member add/del; rules and per-direction policies with
 * the semantics of vppagent/policy/ir.py; per-interface attachment; per-thread
 * flow tables with reply lookup, per-protocol idle timeouts and a bounded size;
 * per-rule and default-deny counters.
 *
 * Threading model: a kp_tables_t (sets, policies, attachments) is written by
 * one control thread while every data-path thread is stopped (VPP's worker
 * barrier) and read by all of them otherwise. A kp_worker_t (flow table,
 * statistics) belongs to exactly one thread; rule counters are per thread
 * rows inside each policy, so no data-path write is shared.
 *
 * Addresses are 16 bytes; IPv4 is carried in the IPv4-mapped form
 * ::ffff:a.b.c.d (so a real IPv6 packet using a v4-mapped address is treated
 * as IPv4, which Kubernetes pod and service addresses never are).
 */
#ifndef KPOL_CORE_H
#define KPOL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: every mutating call returns 0 or one of these. */
enum {
  KP_OK = 0,
  KP_E_INVAL = -1,   /* malformed argument (bad prefix length, lo > hi, ...) */
  KP_E_NOENT = -2,   /* no such set, policy, member or attachment */
  KP_E_EXISTS = -3,  /* the object or member already exists */
  KP_E_BUSY = -4,    /* still referenced (set used by a policy, policy attached) */
  KP_E_NOMEM = -5,
  KP_E_RANGE = -6,   /* id or count out of the supported range */
  KP_E_KIND = -7,    /* member or reference of the wrong set kind */
};
const char *kp_strerror(int err);

/* Limits, checked by every entry point so a bad API message cannot make the
 * core allocate without bound. */
#define KP_MAX_SET_ID (1u << 20)
#define KP_MAX_POLICY_ID (1u << 20)
#define KP_MAX_SW_IF (1u << 24)
#define KP_MAX_RULES 4096u
#define KP_MAX_RULE_REFS 1024u /* peers, ports or peer_ports per rule */
#define KP_MAX_THREADS 256u

typedef enum { KP_SET_ADDR = 1, KP_SET_NET = 2, KP_SET_ADDR_PORT = 3 } kp_set_kind_t;
/* Direction relative to the pod owning the interface. */
typedef enum { KP_INGRESS = 0, KP_EGRESS = 1 } kp_dir_t;

typedef enum {
  KP_REASON_RULE = 0,
  KP_REASON_DEFAULT_DENY = 1,
  KP_REASON_NOT_ISOLATED = 2,
  KP_REASON_REPLY = 3,
  KP_REASON_TABLE_FULL = 4, /* allowed by policy but no flow slot: dropped */
} kp_reason_t;
const char *kp_reason_name(kp_reason_t r);

typedef struct {
  uint8_t b[16];
} kp_addr_t;

void kp_addr_from_v4(kp_addr_t *a, const uint8_t v4[4]);
void kp_addr_from_v6(kp_addr_t *a, const uint8_t v6[16]);
int kp_addr_is_v4(const kp_addr_t *a);
/* Parses dotted IPv4 or textual IPv6; 0 on success. */
int kp_addr_parse(kp_addr_t *a, const char *s);

typedef struct {
  kp_addr_t src, dst;
  uint8_t proto;
  uint16_t sport, dport; /* 0 for protocols without ports */
} kp_packet_t;

/* One set member. ADDR: addr. NET: addr/plen (plen counts bits of the
 * address's own family: 0..32 for IPv4, 0..128 for IPv6), exclude = an
 * ipBlock except entry. ADDR_PORT: addr, proto, port. */
typedef struct {
  kp_addr_t addr;
  uint8_t plen;
  uint8_t exclude;
  uint8_t proto;
  uint16_t port;
} kp_member_t;

typedef struct {
  uint8_t proto; /* 0 = any protocol */
  uint16_t lo, hi;
} kp_port_range_t;

/* A rule as given to kp_policy_set; ids refer to sets that must exist.
 * any_peer = 1 is the IR's peers=None; any_peer = 0 with n_peers = 0 matches
 * no peer (only peer_ports can then match). */
typedef struct {
  uint8_t any_peer;
  uint32_t n_peers;
  const uint32_t *peers; /* ADDR or NET sets */
  uint32_t n_ports;
  const kp_port_range_t *ports;
  uint32_t n_peer_ports;
  const uint32_t *peer_ports; /* ADDR_PORT sets */
} kp_rule_spec_t;

typedef struct {
  uint32_t n_rules;
  const kp_rule_spec_t *rules;
} kp_dir_spec_t;

typedef struct {
  uint8_t allowed;
  uint8_t reason;   /* kp_reason_t */
  uint8_t flow_hit; /* answered from the flow table */
  int32_t rule;     /* matching rule index, -1 when none */
} kp_verdict_t;

typedef struct kp_tables kp_tables_t;
typedef struct kp_worker kp_worker_t;

/* ---- tables (control plane) ---- */
kp_tables_t *kp_tables_new(uint32_t n_threads, uint64_t hash_seed);
void kp_tables_free(kp_tables_t *t);

int kp_set_add(kp_tables_t *t, uint32_t set_id, kp_set_kind_t kind);
int kp_set_del(kp_tables_t *t, uint32_t set_id);
int kp_set_kind(const kp_tables_t *t, uint32_t set_id); /* kind or KP_E_NOENT */
uint32_t kp_set_size(const kp_tables_t *t, uint32_t set_id);
int kp_set_member_add(kp_tables_t *t, uint32_t set_id, const kp_member_t *m);
int kp_set_member_del(kp_tables_t *t, uint32_t set_id, const kp_member_t *m);
/* All-or-nothing batches: on error, members added (or deleted) by this call
 * are put back, *failed_at (if not NULL) says which member failed. */
int kp_set_members_add(kp_tables_t *t, uint32_t set_id, const kp_member_t *m, uint32_t n,
                       uint32_t *failed_at);
int kp_set_members_del(kp_tables_t *t, uint32_t set_id, const kp_member_t *m, uint32_t n,
                       uint32_t *failed_at);
/* Membership test: ADDR/NET use addr; ADDR_PORT uses addr, proto, port. */
int kp_set_contains(const kp_tables_t *t, uint32_t set_id, const kp_addr_t *a, uint8_t proto,
                    uint16_t port);
/* Calls fn for each member (NET: include and exclude prefixes); stops when
 * fn returns non-zero. */
typedef int (*kp_member_fn)(const kp_member_t *m, void *ctx);
int kp_set_walk(const kp_tables_t *t, uint32_t set_id, kp_member_fn fn, void *ctx);

/* dirs[KP_INGRESS], dirs[KP_EGRESS]: NULL = not isolated in that direction.
 * Replaces an existing policy atomically (counters restart at zero). */
int kp_policy_set(kp_tables_t *t, uint32_t policy_id, const kp_dir_spec_t *const dirs[2]);
int kp_policy_del(kp_tables_t *t, uint32_t policy_id);
/* Number of rules in a direction, or -1 if not isolated, KP_E_NOENT if none. */
int kp_policy_n_rules(const kp_tables_t *t, uint32_t policy_id, kp_dir_t dir);
/* Rule i of a direction, as it was given (arrays owned by the core, valid
 * until the policy changes). */
int kp_policy_rule(const kp_tables_t *t, uint32_t policy_id, kp_dir_t dir, uint32_t i,
                   kp_rule_spec_t *out);
/* Upper bounds (exclusive) of the ids in use, for dumps that iterate. */
uint32_t kp_set_max_id(const kp_tables_t *t);
uint32_t kp_policy_max_id(const kp_tables_t *t);
uint32_t kp_attach_max_sw_if(const kp_tables_t *t);
/* The flat rule encoding of the binary API (kpol.api's kpol_item, host byte
 * order): a RULE item starts a rule in direction dir (any_peer = IR peers
 * None); the PEER, PORTS and PEER_PORT items after it belong to that rule, in
 * any order. Parsing it lives here, with no VPP types, so it is fuzzed. */
enum { KP_ITEM_RULE = 0, KP_ITEM_PEER = 1, KP_ITEM_PORTS = 2, KP_ITEM_PEER_PORT = 3 };
typedef struct {
  uint8_t type, dir, any_peer, proto;
  uint16_t lo, hi;
  uint32_t set_id;
} kp_item_t;
#define KP_MAX_ITEMS (1u << 20)

/* Validates the whole item list, then kp_policy_set. KP_E_INVAL for an item
 * before any rule, an unknown type, a direction > 1 or one not isolated. */
int kp_policy_set_items(kp_tables_t *t, uint32_t policy_id, const int isolated[2],
                        const kp_item_t *items, uint32_t n);
/* The policy as items (rules in order, each rule's peers, then ports, then
 * peer_ports). Returns the number of items (which may exceed cap: only cap
 * are written) or KP_E_NOENT; isolated[] is filled. */
int64_t kp_policy_get_items(const kp_tables_t *t, uint32_t policy_id, int isolated[2],
                            kp_item_t *out, uint32_t cap);

/* Sums per-thread counters: out[0] = default-deny drops, out[1 + i] = packets
 * allowed by rule i; n = 1 + n_rules. */
int kp_policy_counters(const kp_tables_t *t, uint32_t policy_id, kp_dir_t dir, uint64_t *out,
                       uint32_t n);

int kp_attach(kp_tables_t *t, uint32_t sw_if_index, uint32_t policy_id);
int kp_detach(kp_tables_t *t, uint32_t sw_if_index);
/* Policy id attached to the interface, or KP_E_NOENT. */
int64_t kp_attached(const kp_tables_t *t, uint32_t sw_if_index);

/* Stateless evaluation of one direction of a policy (counts nothing). */
kp_verdict_t kp_evaluate(const kp_tables_t *t, uint32_t policy_id, kp_dir_t dir,
                         const kp_packet_t *p);

/* ---- workers (one per data-path thread) ---- */
typedef struct {
  uint64_t tcp, udp, other; /* idle timeouts in the caller's clock units */
} kp_timeouts_t;

typedef struct {
  uint64_t flows_created, flow_hits, reply_hits, expired, table_full, reevaluated;
} kp_worker_stats_t;

kp_worker_t *kp_worker_new(uint32_t thread_index, uint32_t max_flows, const kp_timeouts_t *to,
                           uint64_t hash_seed);
void kp_worker_free(kp_worker_t *w);
/* The whole data path for one packet seen on sw_if_index in direction dir at
 * time now (any monotonic clock, same units as the timeouts). */
kp_verdict_t kp_process(const kp_tables_t *t, kp_worker_t *w, uint32_t sw_if_index, kp_dir_t dir,
                        const kp_packet_t *p, uint64_t now);
/* Reclaims up to budget expired flows; returns how many. */
uint32_t kp_worker_expire(kp_worker_t *w, uint64_t now, uint32_t budget);
/* Drops every flow (e.g. after an interface is deleted). */
void kp_worker_flush(kp_worker_t *w);
uint32_t kp_worker_n_flows(const kp_worker_t *w);
const kp_worker_stats_t *kp_worker_stats(const kp_worker_t *w);

#ifdef __cplusplus
}
#endif
#endif
