/*
 * ksvc VPP glue: shared state of the plugin.
 *
 * Owns: the one ks_tables_t (services; written only by API handlers, which
 * run on the main thread with the worker barrier held), one ks_worker_t per
 * thread (sessions and affinity, used only by its own thread's nodes; with
 * workers the nodes hand each packet to the thread owning its client pod's
 * interface, common/kp_owner.h), and
 * the set of interfaces the nodes are enabled on. Everything about choosing
 * and rewriting lives in core/ (no VPP headers).
 */
#ifndef KSVC_H
#define KSVC_H

#include <vnet/vnet.h>

#include <common/kp_handoff.h>
#include <ksvc/core/ksvc_core.h>

typedef struct {
  ks_tables_t *tables;
  ks_worker_t **workers;  /* vec, by thread index */
  ks_timeouts_t timeouts; /* milliseconds */
  u32 max_sessions;       /* per thread */
  kp_threads_t threads;   /* who owns which client interface's sessions */
  u32 fq_index[2][2];     /* frame queues into the four nodes, [is_ip6][is_output] */
  uword *enabled;         /* bitmap of sw_if_index the agent enabled */
  int active;             /* the nodes are on those interfaces (some service exists) */
  u16 msg_id_base;
  vnet_main_t *vnet_main;
} ksvc_main_t;

extern ksvc_main_t ksvc_main;
extern vlib_node_registration_t ksvc_ip4_node, ksvc_ip6_node, ksvc_ip4_out_node, ksvc_ip6_out_node;

/* Enables the four nodes on an interface (they run only while some service exists).
 * Returns VNET_API_ERROR_*. */
int ksvc_enable_disable(u32 sw_if_index, int enable);
/* Milliseconds on the caller's thread clock, the core's time unit. */
always_inline u64 ksvc_now_ms(vlib_main_t *vm) { return (u64)(vlib_time_now(vm) * 1e3); }

#endif
