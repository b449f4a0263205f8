/*
 * ksvc VPP glue: plugin registration, tables and per-thread workers, the
 * binary API handlers, startup config and a show command.
 *
 * Handlers validate the whole message (its length against the count,
 * address families) before calling the core, which validates the service
 * again and changes nothing on error. Handlers are not marked mp-safe, so
 * they run with the worker barrier held, which is what lets them write the
 * service table the workers read.
 */
#include <vnet/vnet.h>
#include <vnet/plugin/plugin.h>
#include <vnet/feature/feature.h>
#include <vnet/ip/ip_types_api.h>
#include <vnet/ip/format.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>
#include <vpp/app/version.h>

#include <ksvc/ksvc.h>
#include <ksvc/core/ks_wire.h>
#include <ksvc/ksvc.api_enum.h>
#include <ksvc/ksvc.api_types.h>

#define REPLY_MSG_ID_BASE km->msg_id_base
#include <vlibapi/api_helper_macros.h>

ksvc_main_t ksvc_main;

static int api_error(int e) {
  switch (e) {
  case KS_OK: return 0;
  case KS_E_NOENT: return VNET_API_ERROR_NO_SUCH_ENTRY;
  case KS_E_EXISTS: return VNET_API_ERROR_ENTRY_ALREADY_EXISTS;
  case KS_E_NOMEM: return VNET_API_ERROR_TABLE_TOO_BIG;
  case KS_E_RANGE: return VNET_API_ERROR_INVALID_VALUE_2;
  default: return VNET_API_ERROR_INVALID_VALUE;
  }
}

static void ksvc_features(u32 sw_if_index, int enable) {
  vnet_feature_enable_disable("ip4-unicast", "ksvc-ip4", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip6-unicast", "ksvc-ip6", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip4-output", "ksvc-ip4-out", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip6-output", "ksvc-ip6-out", sw_if_index, enable, 0, 0);
}

/* The nodes cost every packet of an interface (about 400 clocks in and out), service or
 * not: they are on the enabled interfaces only while at least one service exists. */
static void ksvc_sync_active(void) {
  ksvc_main_t *km = &ksvc_main;
  int want = ks_service_count(km->tables) > 0;
  u32 sw_if_index;
  if (want == km->active) return;
  clib_bitmap_foreach (sw_if_index, km->enabled) {
    ksvc_features(sw_if_index, want);
  }
  km->active = want;
}

int ksvc_enable_disable(u32 sw_if_index, int enable) {
  ksvc_main_t *km = &ksvc_main;
  int was = clib_bitmap_get(km->enabled, sw_if_index);
  if (!!enable == was) return 0;
  if (km->active) ksvc_features(sw_if_index, enable);
  km->enabled = clib_bitmap_set(km->enabled, sw_if_index, enable ? 1 : 0);
  return 0;
}

/* Addresses and backend arrays are decoded by the core (core/ks_wire.c, fuzzed there):
 * its packed structs must be exactly vppapigen's. */
STATIC_ASSERT(sizeof(kp_wire_addr_t) == sizeof(vl_api_address_t), "address layout");
STATIC_ASSERT(sizeof(ks_wire_backend_t) == sizeof(vl_api_ksvc_backend_t), "ksvc_backend layout");
STATIC_ASSERT(offsetof(ks_wire_backend_t, port) == offsetof(vl_api_ksvc_backend_t, port), "ksvc_backend port");

static int decode_addr(const vl_api_address_t *in, ks_addr_t *out) {
  return ks_wire_addr((const kp_wire_addr_t *)in, out) == KS_OK ? 0 : -1;
}

static void encode_addr(const ks_addr_t *in, vl_api_address_t *out) {
  ks_wire_encode_addr(in, (kp_wire_addr_t *)out);
}

static void vl_api_ksvc_service_update_t_handler(vl_api_ksvc_service_update_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_ksvc_service_update_reply_t *rmp;
  u32 n = clib_net_to_host_u32(mp->n_backends), failed_at = ~0;
  ks_backend_t *be = 0;
  ks_service_spec_t s = {0};
  int rv = 0;
  if (n > KS_MAX_BACKENDS) {
    rv = VNET_API_ERROR_INVALID_VALUE_2;
    goto done;
  }
  u64 len = vl_msg_api_get_msg_length(mp), tail = len > sizeof(*mp) ? len - sizeof(*mp) : 0;
  if (!kp_wire_fits(tail, n, sizeof(ks_wire_backend_t), KS_MAX_BACKENDS) || decode_addr(&mp->vip, &s.vip)) {
    rv = VNET_API_ERROR_INVALID_VALUE;
    goto done;
  }
  vec_validate(be, n ? n - 1 : 0);
  if (ks_wire_backends(mp->backends, tail, n, be, &failed_at) != KS_OK) {
    rv = VNET_API_ERROR_INVALID_VALUE;
    goto done;
  }
  s.proto = mp->proto;
  s.port = clib_net_to_host_u16(mp->port);
  s.timeout_s = clib_net_to_host_u32(mp->timeout);
  s.n_backends = n;
  s.backends = be;
  rv = api_error(ks_service_update(km->tables, &s, &failed_at));
  ksvc_sync_active();
done:
  vec_free(be);
  REPLY_MACRO2(VL_API_KSVC_SERVICE_UPDATE_REPLY,
               ({ rmp->failed_at = clib_host_to_net_u32(rv ? failed_at : ~0); }));
}

static void vl_api_ksvc_service_del_t_handler(vl_api_ksvc_service_del_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_ksvc_service_del_reply_t *rmp;
  ks_addr_t vip;
  int rv = decode_addr(&mp->vip, &vip)
               ? VNET_API_ERROR_INVALID_VALUE
               : api_error(ks_service_del(km->tables, &vip, mp->proto, clib_net_to_host_u16(mp->port)));
  ksvc_sync_active();
  REPLY_MACRO(VL_API_KSVC_SERVICE_DEL_REPLY);
}

typedef struct {
  vl_api_registration_t *reg;
  u32 context;
} dump_ctx_t;

static int send_service(const ks_service_spec_t *s, void *arg) {
  ksvc_main_t *km = &ksvc_main;
  dump_ctx_t *ctx = arg;
  u32 n = s->n_backends;
  vl_api_ksvc_service_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp) + n * sizeof(rmp->backends[0]));
  rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KSVC_SERVICE_DETAILS + km->msg_id_base);
  rmp->context = ctx->context;
  encode_addr(&s->vip, &rmp->vip);
  rmp->proto = s->proto;
  rmp->port = clib_host_to_net_u16(s->port);
  rmp->timeout = clib_host_to_net_u32(s->timeout_s);
  rmp->n_backends = clib_host_to_net_u32(n);
  for (u32 i = 0; i < n; i++) {
    ks_wire_encode_backend(&s->backends[i], (ks_wire_backend_t *)&rmp->backends[i]);
  }
  vl_api_send_msg(ctx->reg, (u8 *)rmp);
  return 0;
}

static void vl_api_ksvc_service_dump_t_handler(vl_api_ksvc_service_dump_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  dump_ctx_t ctx = {reg, mp->context};
  ks_service_walk(km->tables, send_service, &ctx);
}

static void vl_api_ksvc_enable_disable_t_handler(vl_api_ksvc_enable_disable_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_ksvc_enable_disable_reply_t *rmp;
  int rv = 0;
  VALIDATE_SW_IF_INDEX(mp);
  rv = ksvc_enable_disable(clib_net_to_host_u32(mp->sw_if_index), mp->enable);
  BAD_SW_IF_INDEX_LABEL;
  REPLY_MACRO(VL_API_KSVC_ENABLE_DISABLE_REPLY);
}

static void vl_api_ksvc_interface_dump_t_handler(vl_api_ksvc_interface_dump_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  u32 sw;
  clib_bitmap_foreach (sw, km->enabled) {
    vl_api_ksvc_interface_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp));
    rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KSVC_INTERFACE_DETAILS + km->msg_id_base);
    rmp->context = mp->context;
    rmp->sw_if_index = clib_host_to_net_u32(sw);
    vl_api_send_msg(reg, (u8 *)rmp);
  }
}

static void sum_stats(ksvc_main_t *km, ks_worker_stats_t *sum, u64 *sessions, u64 *affinity) {
  clib_memset(sum, 0, sizeof(*sum));
  *sessions = *affinity = 0;
  for (u32 i = 0; i < vec_len(km->workers); i++) {
    const ks_worker_stats_t *s = ks_worker_stats(km->workers[i]);
    *sessions += ks_worker_n_sessions(km->workers[i]);
    *affinity += ks_worker_n_affinity(km->workers[i]);
    sum->sessions_created += s->sessions_created;
    sum->forward_hits += s->forward_hits;
    sum->reply_hits += s->reply_hits;
    sum->expired += s->expired;
    sum->table_full += s->table_full;
    sum->no_backend += s->no_backend;
    sum->affinity_hits += s->affinity_hits;
    sum->affinity_new += s->affinity_new;
    sum->affinity_evicted += s->affinity_evicted;
    sum->stale += s->stale;
  }
}

static void vl_api_ksvc_stats_t_handler(vl_api_ksvc_stats_t *mp) {
  ksvc_main_t *km = &ksvc_main;
  vl_api_ksvc_stats_reply_t *rmp;
  int rv = 0;
  ks_worker_stats_t s;
  u64 sessions, affinity;
  sum_stats(km, &s, &sessions, &affinity);
  REPLY_MACRO2(VL_API_KSVC_STATS_REPLY, ({
                 rmp->sessions = clib_host_to_net_u64(sessions);
                 rmp->affinity_entries = clib_host_to_net_u64(affinity);
                 rmp->sessions_created = clib_host_to_net_u64(s.sessions_created);
                 rmp->forward_hits = clib_host_to_net_u64(s.forward_hits);
                 rmp->reply_hits = clib_host_to_net_u64(s.reply_hits);
                 rmp->expired = clib_host_to_net_u64(s.expired);
                 rmp->table_full = clib_host_to_net_u64(s.table_full);
                 rmp->no_backend = clib_host_to_net_u64(s.no_backend);
                 rmp->affinity_hits = clib_host_to_net_u64(s.affinity_hits);
                 rmp->affinity_new = clib_host_to_net_u64(s.affinity_new);
                 rmp->affinity_evicted = clib_host_to_net_u64(s.affinity_evicted);
                 rmp->stale = clib_host_to_net_u64(s.stale);
               }));
}

#include <vnet/format_fns.h>
#include <ksvc/ksvc.api.c>

/* ---- lifecycle ---- */

static clib_error_t *ksvc_interface_add_del(vnet_main_t *vnm, u32 sw_if_index, u32 is_add) {
  ksvc_main_t *km = &ksvc_main;
  /* a deleted interface's index may be reused: forget it */
  if (!is_add && clib_bitmap_get(km->enabled, sw_if_index)) ksvc_enable_disable(sw_if_index, 0);
  return 0;
}
VNET_SW_INTERFACE_ADD_DEL_FUNCTION(ksvc_interface_add_del);

static clib_error_t *ksvc_config(vlib_main_t *vm, unformat_input_t *input) {
  ksvc_main_t *km = &ksvc_main;
  u32 v;
  while (unformat_check_input(input) != UNFORMAT_END_OF_INPUT) {
    u64 *timeout = 0;
    if (unformat(input, "max-sessions-per-thread %u", &v)) {
      if (v == 0 || v > (1u << 26))
        return clib_error_return(0, "ksvc: max-sessions-per-thread %u not in 1..%u", v, 1u << 26);
      km->max_sessions = v;
      continue;
    }
    if (unformat(input, "tcp-timeout %u", &v))
      timeout = &km->timeouts.tcp;
    else if (unformat(input, "udp-timeout %u", &v))
      timeout = &km->timeouts.udp;
    else if (unformat(input, "other-timeout %u", &v))
      timeout = &km->timeouts.other;
    else
      return clib_error_return(0, "unknown ksvc input '%U'", format_unformat_error, input);
    if (v == 0) return clib_error_return(0, "ksvc: a session timeout of 0 s");
    *timeout = (u64)v * 1000;
  }
  return 0;
}
VLIB_CONFIG_FUNCTION(ksvc_config, "ksvc");

static clib_error_t *ksvc_init(vlib_main_t *vm) {
  ksvc_main_t *km = &ksvc_main;
  km->vnet_main = vnet_get_main();
  km->max_sessions = 65536;
  km->timeouts = (ks_timeouts_t){.tcp = 7200 * 1000, .udp = 120 * 1000, .other = 120 * 1000};
  km->msg_id_base = setup_message_id_table();
  const u32 nodes[2][2] = {{ksvc_ip4_node.index, ksvc_ip4_out_node.index},
                           {ksvc_ip6_node.index, ksvc_ip6_out_node.index}};
  km->threads = kp_handoff_init(km->fq_index, nodes);
  return 0;
}
VLIB_INIT_FUNCTION(ksvc_init);

/* Sized when the main loop starts: the thread count is known and the
 * "ksvc { }" config has been read; API messages, the only writers, are
 * served only from the main loop. */
static clib_error_t *ksvc_main_loop_enter(vlib_main_t *vm) {
  ksvc_main_t *km = &ksvc_main;
  u32 n = vlib_get_thread_main()->n_vlib_mains;
  u64 seed = clib_cpu_time_now();
  km->tables = ks_tables_new(seed);
  if (!km->tables) return clib_error_return(0, "ksvc: cannot allocate the service table");
  vec_validate(km->workers, n - 1);
  for (u32 i = 0; i < n; i++) {
    km->workers[i] = ks_worker_new(km->max_sessions, &km->timeouts, seed ^ (i + 1));
    if (!km->workers[i])
      return clib_error_return(0, "ksvc: cannot allocate %u sessions for thread %u", km->max_sessions, i);
  }
  return 0;
}
VLIB_MAIN_LOOP_ENTER_FUNCTION(ksvc_main_loop_enter);

/* ---- CLI ---- */

static u8 *format_ks_addr(u8 *s, va_list *args) {
  const ks_addr_t *a = va_arg(*args, const ks_addr_t *);
  if (ks_addr_is_v4(a)) return format(s, "%U", format_ip4_address, a->b + 12);
  return format(s, "%U", format_ip6_address, a->b);
}

static int show_service(const ks_service_spec_t *s, void *arg) {
  vlib_main_t *vm = arg;
  u8 *line = format(0, "%U proto %u port %u timeout %us:", format_ks_addr, &s->vip, s->proto, s->port,
                    s->timeout_s);
  for (u32 i = 0; i < s->n_backends; i++)
    line = format(line, " %U:%u", format_ks_addr, &s->backends[i].addr, s->backends[i].port);
  vlib_cli_output(vm, "%v", line);
  vec_free(line);
  return 0;
}

static clib_error_t *show_ksvc_fn(vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd) {
  ksvc_main_t *km = &ksvc_main;
  if (!km->tables) return 0;
  vlib_cli_output(vm, "%u services", ks_service_count(km->tables));
  ks_service_walk(km->tables, show_service, vm);
  u32 sw;
  clib_bitmap_foreach (sw, km->enabled)
    vlib_cli_output(vm, "enabled on %U", format_vnet_sw_if_index_name, km->vnet_main, sw);
  for (u32 i = 0; i < vec_len(km->workers); i++) {
    const ks_worker_stats_t *s = ks_worker_stats(km->workers[i]);
    vlib_cli_output(vm,
                    "thread %u: %u sessions, %u affinity entries; %llu created, %llu forward hits, "
                    "%llu reply hits, %llu expired, %llu table-full, %llu no-backend, affinity %llu hits "
                    "%llu new %llu evicted, %llu stale",
                    i, ks_worker_n_sessions(km->workers[i]), ks_worker_n_affinity(km->workers[i]),
                    s->sessions_created, s->forward_hits, s->reply_hits, s->expired, s->table_full,
                    s->no_backend, s->affinity_hits, s->affinity_new, s->affinity_evicted, s->stale);
  }
  return 0;
}

VLIB_CLI_COMMAND(show_ksvc_command, static) = {
  .path = "show ksvc",
  .short_help = "show ksvc",
  .function = show_ksvc_fn,
};

VLIB_PLUGIN_REGISTER() = {
  .version = VPP_BUILD_VER,
  .description = "Kubernetes Services with ClientIP session affinity",
};
