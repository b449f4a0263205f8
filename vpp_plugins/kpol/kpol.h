/*
 * kpol VPP glue: shared state of the plugin.
 *
 * Owns: the one kp_tables_t (sets, policies, attachments; written only by
 * API handlers, which run on the main thread with the worker barrier held)
 * and one kp_worker_t per thread (flow table, used only by its own thread's
 * graph nodes). Everything about matching lives in core/ (no VPP headers).
 */
#ifndef KPOL_H
#define KPOL_H

#include <vnet/vnet.h>

#include <kpol/core/kpol_core.h>

typedef struct {
  kp_tables_t *tables;
  kp_worker_t **workers; /* vec, by thread index */
  kp_timeouts_t timeouts; /* milliseconds */
  u32 max_flows;          /* per thread */
  u16 msg_id_base;
  vnet_main_t *vnet_main;
} kpol_main_t;

extern kpol_main_t kpol_main;

/* Attaches (or with is_add = 0 detaches) and turns the four feature-arc
 * nodes on the interface on or off to match. Returns a VNET_API_ERROR_*. */
int kpol_interface_attach(u32 sw_if_index, u32 policy_id, int is_add);
/* The VNET_API_ERROR_* for a core error code. */
int kpol_api_error(int kp_err);
/* Milliseconds on the caller's thread clock, the core's time unit. */
always_inline u64 kpol_now_ms(vlib_main_t *vm) { return (u64)(vlib_time_now(vm) * 1e3); }

#endif
