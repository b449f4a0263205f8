/*
 * kpol VPP glue: shared state of the plugin.
 *
 * Owns: the one kp_tables_t (sets, policies, attachments; written only by
 * API handlers, which run on the main thread with the worker barrier held)
 * and one kp_worker_t per thread (flow table, used only by its own thread's
 * graph nodes: with workers, the nodes hand each packet to the thread that
 * owns its interface, common/kp_owner.h). Everything about matching lives in core/ (no VPP headers).
 */
#ifndef KPOL_H
#define KPOL_H

#include <vnet/vnet.h>

#include <common/kp_handoff.h>
#include <kpol/core/kpol_core.h>

typedef struct {
  kp_tables_t *tables;
  kp_worker_t **workers; /* vec, by thread index */
  kp_timeouts_t timeouts; /* milliseconds */
  u32 max_flows;          /* per thread */
  kp_threads_t threads;   /* who owns which interface's flows */
  u32 fq_index[2][2];     /* frame queues into the four nodes, [is_ip6][is_output] */
  u16 msg_id_base;
  vnet_main_t *vnet_main;
} kpol_main_t;

extern kpol_main_t kpol_main;
extern vlib_node_registration_t kpol_ip4_in_node, kpol_ip4_out_node, kpol_ip6_in_node, kpol_ip6_out_node;

/* Attaches (or with is_add = 0 detaches) and turns the four feature-arc
 * nodes on the interface on or off to match. Returns a VNET_API_ERROR_*. */
int kpol_interface_attach(u32 sw_if_index, u32 policy_id, int is_add);
/* The VNET_API_ERROR_* for a core error code. */
int kpol_api_error(int kp_err);
/* Milliseconds on the caller's thread clock, the core's time unit. */
always_inline u64 kpol_now_ms(vlib_main_t *vm) { return (u64)(vlib_time_now(vm) * 1e3); }

#endif
