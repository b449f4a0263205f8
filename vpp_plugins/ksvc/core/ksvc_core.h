/*
 * ksvc core: Kubernetes Services with ClientIP session affinity, in plain
 * C11 with no VPP headers (the VPP glue is ../ksvc.c and ../node.c).
 *
 * Owns:
 *  - the service table: (VIP, proto, port) -> backends + affinity timeout,
 *    written only by the control plane (in VPP: API handlers with the
 *    worker barrier held), read by every worker;
 *  - per-thread workers: a bounded session table (two keys per session:
 *    the client's forward 5-tuple and the backend's reply 5-tuple) and a
 *    bounded affinity table (client IP, service) -> (backend, last seen);
 *  - packet helpers on raw bytes: parse IPv4/IPv6 + TCP/UDP/SCTP, rewrite
 *    one address and port with incremental checksum updates.
 * Time is always a parameter (milliseconds, never going back on a thread).
 *
 * Addresses are 16 bytes; IPv4 is held IPv4-mapped (::ffff:a.b.c.d).
 * Error codes share kp_hash's values (KP_E_*), so its results pass through.
 */
#ifndef KSVC_CORE_H
#define KSVC_CORE_H

#include <stddef.h>
#include <stdint.h>

enum {
  KS_OK = 0,
  KS_E_INVAL = -1,  /* malformed argument (port 0, mixed families, bad proto, timeout) */
  KS_E_NOENT = -2,  /* no such service */
  KS_E_EXISTS = -3, /* duplicate backend */
  KS_E_NOMEM = -5,
  KS_E_RANGE = -6,  /* too many backends or services */
};

#define KS_MAX_BACKENDS 1024u
#define KS_MAX_SERVICES 65536u
#define KS_MAX_TIMEOUT_S 86400u
#define KS_MAX_THREADS 256u

typedef struct {
  uint8_t b[16];
} ks_addr_t;

typedef struct {
  ks_addr_t addr;
  uint16_t port;
} ks_backend_t;

/* A service as the control plane gives it (and as walks return it). */
typedef struct {
  ks_addr_t vip;
  uint8_t proto; /* 6, 17 or 132 */
  uint16_t port;
  uint32_t timeout_s; /* affinity timeout, 1..KS_MAX_TIMEOUT_S */
  uint32_t n_backends; /* 0 (new flows dropped) .. KS_MAX_BACKENDS */
  const ks_backend_t *backends;
} ks_service_spec_t;

typedef struct ks_tables ks_tables_t;
typedef struct ks_worker ks_worker_t;

void ks_addr_from_v4(ks_addr_t *a, const uint8_t v4[4]);
void ks_addr_from_v6(ks_addr_t *a, const uint8_t v6[16]);
int ks_addr_is_v4(const ks_addr_t *a);

/* ---- services (control plane) ---- */

ks_tables_t *ks_tables_new(uint64_t seed);
void ks_tables_free(ks_tables_t *t);
/* Validates the whole spec, then creates the service or replaces its
 * backends and timeout in one step. Sessions and affinity entries whose
 * backend left the set are dropped (re-picked) when next used. On error
 * nothing changed; *bad_backend (if given) is the offending backend's
 * index, or UINT32_MAX when the error is not about one backend. */
int ks_service_update(ks_tables_t *t, const ks_service_spec_t *s, uint32_t *bad_backend);
/* Removes a service. Its sessions and affinity entries die lazily: the
 * next packet that finds one sees the service gone and drops it. */
int ks_service_del(ks_tables_t *t, const ks_addr_t *vip, uint8_t proto, uint16_t port);
uint32_t ks_service_count(const ks_tables_t *t);
/* Calls fn for each service (backends in the order given at update);
 * stops and returns fn's value when non-zero. */
int ks_service_walk(const ks_tables_t *t, int (*fn)(const ks_service_spec_t *s, void *ctx), void *ctx);
int ks_service_get(const ks_tables_t *t, const ks_addr_t *vip, uint8_t proto, uint16_t port,
                   ks_service_spec_t *out);

/* ---- workers (data plane, one per thread) ---- */

typedef struct {
  uint64_t tcp, udp, other; /* session idle timeouts, milliseconds */
} ks_timeouts_t;

typedef struct {
  uint64_t sessions_created, forward_hits, reply_hits, expired, table_full, no_backend;
  uint64_t affinity_hits, affinity_new, affinity_evicted, stale; /* stale: service gone or backend removed */
} ks_worker_stats_t;

ks_worker_t *ks_worker_new(uint32_t max_sessions, const ks_timeouts_t *to, uint64_t seed);
void ks_worker_free(ks_worker_t *w);
uint32_t ks_worker_n_sessions(const ks_worker_t *w);
uint32_t ks_worker_n_affinity(const ks_worker_t *w);
const ks_worker_stats_t *ks_worker_stats(const ks_worker_t *w);
/* Frees up to budget expired sessions and affinity entries; returns how many. */
uint32_t ks_worker_expire(ks_worker_t *w, uint64_t now, uint32_t budget);

typedef struct {
  ks_addr_t src, dst;
  uint16_t sport, dport;
  uint8_t proto;
  uint8_t is_ip6;
  uint16_t l4_off;  /* offset of the L4 header from the IP header */
  uint32_t l3_len;  /* the IP header's stated length of the packet */
} ks_packet_t;

typedef enum {
  KS_PASS = 0,        /* not ours: forward untouched */
  KS_DNAT = 1,        /* client -> VIP: rewrite destination to addr:port */
  KS_UNDNAT = 2,      /* backend -> client: rewrite source to addr:port (the VIP) */
  KS_DROP_FULL = 3,   /* new flow, session table full */
  KS_DROP_NO_BACKEND = 4, /* new flow to a service without backends */
} ks_action_t;

typedef struct {
  ks_action_t action;
  ks_addr_t addr;
  uint16_t port;
} ks_result_t;

/* A packet entering from a client: to a service's VIP:port it is DNATed
 * (existing session, fresh affinity, or a new pick) or dropped; anything
 * else passes. */
ks_result_t ks_forward(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now);
/* A packet leaving towards a client: a session's reply gets its VIP back as
 * source (KS_UNDNAT); anything else passes. Kept apart from ks_forward so the
 * glue can run it after policy on the output side (policy then sees pod
 * addresses both ways). */
ks_result_t ks_reverse(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now);
/* ks_forward when the destination is a service, else ks_reverse. */
ks_result_t ks_process(const ks_tables_t *t, ks_worker_t *w, const ks_packet_t *p, uint64_t now);

/* ---- packets ---- */

/* Parses the IP packet at h (avail contiguous bytes). Returns 1 and fills p
 * when it is TCP, UDP or SCTP, not a fragment, with its whole L4 header
 * within avail; 0 otherwise (p then says nothing). Never reads past avail. */
int ks_parse(const uint8_t *h, uint32_t avail, ks_packet_t *p);
/* Rewrites the destination (is_dst) or source address and port of a packet
 * ks_parse accepted, updating the IPv4 header checksum and the L4 checksum
 * incrementally. l4_partial: the L4 checksum field holds only the
 * pseudo-header sum (checksum offload pending), so only addresses enter it.
 * SCTP's CRC32c is recomputed over [l4_off, l3_len), which must lie within
 * avail; returns 0 when done, -1 when it could not (nothing written). */
int ks_rewrite(uint8_t *h, uint32_t avail, const ks_packet_t *p, int is_dst, const ks_addr_t *a,
               uint16_t port, int l4_partial);
uint32_t ks_crc32c(const uint8_t *d, size_t n);

const char *ks_action_name(ks_action_t a);

#endif
