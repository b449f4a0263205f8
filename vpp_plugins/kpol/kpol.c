/*
 * kpol VPP glue: plugin registration, tables and per-thread workers, the
 * binary API handlers and a show command.
 *
 * Every handler validates the whole message (lengths against the received
 * size, counts, address families, item order) before calling the core, and
 * the core itself rejects out-of-range ids and malformed rules without
 * changing anything; a rejected message leaves the tables as they were.
 * Handlers are not marked mp-safe, so they run with the worker barrier held,
 * which is what lets them write the tables the workers read.
 */
#include <vnet/vnet.h>
#include <vnet/plugin/plugin.h>
#include <vnet/feature/feature.h>
#include <vnet/ip/ip_types_api.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>
#include <vpp/app/version.h>

#include <kpol/kpol.h>
#include <kpol/core/kp_wire.h>
#include <kpol/kpol.api_enum.h>
#include <kpol/kpol.api_types.h>

#define REPLY_MSG_ID_BASE km->msg_id_base
#include <vlibapi/api_helper_macros.h>

kpol_main_t kpol_main;


int kpol_api_error(int e) {
  switch (e) {
  case KP_OK: return 0;
  case KP_E_NOENT: return VNET_API_ERROR_NO_SUCH_ENTRY;
  case KP_E_EXISTS: return VNET_API_ERROR_ENTRY_ALREADY_EXISTS;
  case KP_E_BUSY: return VNET_API_ERROR_INSTANCE_IN_USE;
  case KP_E_NOMEM: return VNET_API_ERROR_TABLE_TOO_BIG;
  case KP_E_RANGE: return VNET_API_ERROR_INVALID_VALUE_2;
  case KP_E_KIND: return VNET_API_ERROR_INVALID_VALUE_3;
  default: return VNET_API_ERROR_INVALID_VALUE;
  }
}

static void kpol_features(u32 sw_if_index, int enable) {
  vnet_feature_enable_disable("ip4-unicast", "kpol-ip4-in", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip4-output", "kpol-ip4-out", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip6-unicast", "kpol-ip6-in", sw_if_index, enable, 0, 0);
  vnet_feature_enable_disable("ip6-output", "kpol-ip6-out", sw_if_index, enable, 0, 0);
}

int kpol_interface_attach(u32 sw_if_index, u32 policy_id, int is_add) {
  kpol_main_t *km = &kpol_main;
  int was = kp_attached(km->tables, sw_if_index) >= 0;
  int rv = is_add ? kp_attach(km->tables, sw_if_index, policy_id) : kp_detach(km->tables, sw_if_index);
  if (rv) return kpol_api_error(rv);
  if (is_add && !was) kpol_features(sw_if_index, 1);
  if (!is_add && was) kpol_features(sw_if_index, 0);
  return 0;
}

/* ---- members ---- */

/* The messages' element arrays are decoded by the core (core/kp_wire.c, fuzzed there): its
 * packed structs must be exactly vppapigen's. */
#define KPOL_SAME_FIELD(w, a, f) STATIC_ASSERT(offsetof(w, f) == offsetof(a, f), #f " of " #a)
STATIC_ASSERT(sizeof(kp_wire_member_t) == sizeof(vl_api_kpol_member_t), "kpol_member layout");
STATIC_ASSERT(sizeof(kp_wire_addr_t) == sizeof(vl_api_address_t), "address layout");
KPOL_SAME_FIELD(kp_wire_member_t, vl_api_kpol_member_t, plen);
KPOL_SAME_FIELD(kp_wire_member_t, vl_api_kpol_member_t, port);
STATIC_ASSERT(sizeof(kp_wire_item_t) == sizeof(vl_api_kpol_item_t), "kpol_item layout");
KPOL_SAME_FIELD(kp_wire_item_t, vl_api_kpol_item_t, lo);
KPOL_SAME_FIELD(kp_wire_item_t, vl_api_kpol_item_t, set_id);

/* Bytes of the message after its fixed part (0 if it is shorter than that). */
static u64 msg_tail(void *mp, u64 fixed) {
  u64 len = vl_msg_api_get_msg_length(mp);
  return len > fixed ? len - fixed : 0;
}

static void vl_api_kpol_ipset_add_t_handler(vl_api_kpol_ipset_add_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_ipset_add_reply_t *rmp;
  int rv = kpol_api_error(kp_set_add(km->tables, clib_net_to_host_u32(mp->set_id),
                                     (kp_set_kind_t)mp->kind));
  REPLY_MACRO(VL_API_KPOL_IPSET_ADD_REPLY);
}

static void vl_api_kpol_ipset_del_t_handler(vl_api_kpol_ipset_del_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_ipset_del_reply_t *rmp;
  int rv = kpol_api_error(kp_set_del(km->tables, clib_net_to_host_u32(mp->set_id)));
  REPLY_MACRO(VL_API_KPOL_IPSET_DEL_REPLY);
}

static void vl_api_kpol_ipset_members_add_del_t_handler(vl_api_kpol_ipset_members_add_del_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_ipset_members_add_del_reply_t *rmp;
  u32 n = clib_net_to_host_u32(mp->n_members), failed_at = ~0;
  u64 tail = msg_tail(mp, sizeof(*mp));
  kp_member_t *m = 0;
  int rv = 0;
  if (!kp_wire_fits(tail, n, sizeof(kp_wire_member_t), KP_WIRE_MAX_BATCH)) {
    rv = VNET_API_ERROR_INVALID_VALUE;
    goto done;
  }
  vec_validate(m, n ? n - 1 : 0);
  if (kp_wire_members(mp->members, tail, n, m, &failed_at) != KP_OK) {
    rv = VNET_API_ERROR_INVALID_VALUE;
    goto done;
  }
  u32 id = clib_net_to_host_u32(mp->set_id);
  rv = kpol_api_error(mp->is_add ? kp_set_members_add(km->tables, id, m, n, &failed_at)
                                 : kp_set_members_del(km->tables, id, m, n, &failed_at));
done:
  vec_free(m);
  REPLY_MACRO2(VL_API_KPOL_IPSET_MEMBERS_ADD_DEL_REPLY,
               ({ rmp->failed_at = clib_host_to_net_u32(rv ? failed_at : ~0); }));
}

/* ---- policies ---- */

static void vl_api_kpol_policy_set_t_handler(vl_api_kpol_policy_set_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_policy_set_reply_t *rmp;
  u32 n = clib_net_to_host_u32(mp->n_items);
  int isolated[2] = {mp->ingress_isolated != 0, mp->egress_isolated != 0};
  kp_item_t *items = 0;
  int rv;
  u64 tail = msg_tail(mp, sizeof(*mp));
  if (!kp_wire_fits(tail, n, sizeof(kp_wire_item_t), KP_WIRE_MAX_BATCH)) {
    rv = VNET_API_ERROR_INVALID_VALUE;
  } else {
    vec_validate(items, n ? n - 1 : 0);
    kp_wire_items(mp->items, tail, n, items);
    rv = kpol_api_error(kp_policy_set_items(km->tables, clib_net_to_host_u32(mp->policy_id), isolated,
                                            items, n));
  }
  vec_free(items);
  REPLY_MACRO(VL_API_KPOL_POLICY_SET_REPLY);
}

static void vl_api_kpol_policy_del_t_handler(vl_api_kpol_policy_del_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_policy_del_reply_t *rmp;
  int rv = kpol_api_error(kp_policy_del(km->tables, clib_net_to_host_u32(mp->policy_id)));
  REPLY_MACRO(VL_API_KPOL_POLICY_DEL_REPLY);
}

static void vl_api_kpol_interface_attach_t_handler(vl_api_kpol_interface_attach_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_interface_attach_reply_t *rmp;
  int rv = 0;
  VALIDATE_SW_IF_INDEX(mp);
  rv = kpol_interface_attach(clib_net_to_host_u32(mp->sw_if_index),
                             clib_net_to_host_u32(mp->policy_id), mp->is_add);
  BAD_SW_IF_INDEX_LABEL;
  REPLY_MACRO(VL_API_KPOL_INTERFACE_ATTACH_REPLY);
}

/* ---- dumps ---- */

static int collect_member(const kp_member_t *m, void *ctx) {
  vec_add1(*(kp_member_t **)ctx, *m);
  return 0;
}

static void send_ipset(kpol_main_t *km, vl_api_registration_t *reg, u32 context, u32 id) {
  int kind = kp_set_kind(km->tables, id);
  if (kind < 0) return;
  kp_member_t *ms = 0;
  kp_set_walk(km->tables, id, collect_member, &ms);
  u32 n = vec_len(ms);
  vl_api_kpol_ipset_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp) + n * sizeof(rmp->members[0]));
  rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KPOL_IPSET_DETAILS + km->msg_id_base);
  rmp->context = context;
  rmp->set_id = clib_host_to_net_u32(id);
  rmp->kind = (u8)kind;
  rmp->n_members = clib_host_to_net_u32(n);
  for (u32 i = 0; i < n; i++) kp_wire_encode_member(&ms[i], (kp_wire_member_t *)&rmp->members[i]);
  vec_free(ms);
  vl_api_send_msg(reg, (u8 *)rmp);
}

static void vl_api_kpol_ipset_dump_t_handler(vl_api_kpol_ipset_dump_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  u32 id = clib_net_to_host_u32(mp->set_id);
  if (id != ~0) {
    send_ipset(km, reg, mp->context, id);
    return;
  }
  for (u32 i = 0; i < kp_set_max_id(km->tables); i++) send_ipset(km, reg, mp->context, i);
}

static void send_policy(kpol_main_t *km, vl_api_registration_t *reg, u32 context, u32 id) {
  int isolated[2];
  i64 n = kp_policy_get_items(km->tables, id, isolated, 0, 0);
  if (n < 0) return;
  kp_item_t *items = 0;
  if (n) {
    vec_validate(items, n - 1);
    kp_policy_get_items(km->tables, id, isolated, items, (u32)n);
  }
  vl_api_kpol_policy_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp) + n * sizeof(rmp->items[0]));
  rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KPOL_POLICY_DETAILS + km->msg_id_base);
  rmp->context = context;
  rmp->policy_id = clib_host_to_net_u32(id);
  rmp->ingress_isolated = isolated[0];
  rmp->egress_isolated = isolated[1];
  rmp->n_items = clib_host_to_net_u32((u32)n);
  for (i64 i = 0; i < n; i++) {
    kp_wire_encode_item(&items[i], (kp_wire_item_t *)&rmp->items[i]);
  }
  vec_free(items);
  vl_api_send_msg(reg, (u8 *)rmp);
}

static void vl_api_kpol_policy_dump_t_handler(vl_api_kpol_policy_dump_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  u32 id = clib_net_to_host_u32(mp->policy_id);
  if (id != ~0) {
    send_policy(km, reg, mp->context, id);
    return;
  }
  for (u32 i = 0; i < kp_policy_max_id(km->tables); i++) send_policy(km, reg, mp->context, i);
}

static void vl_api_kpol_interface_dump_t_handler(vl_api_kpol_interface_dump_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  for (u32 sw = 0; sw < kp_attach_max_sw_if(km->tables); sw++) {
    i64 pol = kp_attached(km->tables, sw);
    if (pol < 0) continue;
    vl_api_kpol_interface_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp));
    rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KPOL_INTERFACE_DETAILS + km->msg_id_base);
    rmp->context = mp->context;
    rmp->sw_if_index = clib_host_to_net_u32(sw);
    rmp->policy_id = clib_host_to_net_u32((u32)pol);
    vl_api_send_msg(reg, (u8 *)rmp);
  }
}

static void send_counters(kpol_main_t *km, vl_api_registration_t *reg, u32 context, u32 id) {
  for (int d = 0; d < 2; d++) {
    int nr = kp_policy_n_rules(km->tables, id, (kp_dir_t)d);
    if (nr < 0) continue; /* no such policy, or not isolated: no counters */
    u32 n = (u32)nr + 1;
    vl_api_kpol_counters_details_t *rmp = vl_msg_api_alloc_zero(sizeof(*rmp) + n * sizeof(u64));
    rmp->_vl_msg_id = clib_host_to_net_u16(VL_API_KPOL_COUNTERS_DETAILS + km->msg_id_base);
    rmp->context = context;
    rmp->policy_id = clib_host_to_net_u32(id);
    rmp->dir = (u8)d;
    u64 *c = 0;
    vec_validate(c, n - 1);
    kp_policy_counters(km->tables, id, (kp_dir_t)d, c, n);
    for (u32 i = 0; i < n; i++) rmp->counts[i] = clib_host_to_net_u64(c[i]);
    vec_free(c);
    rmp->n_counts = clib_host_to_net_u32(n);
    vl_api_send_msg(reg, (u8 *)rmp);
  }
}

static void vl_api_kpol_counters_dump_t_handler(vl_api_kpol_counters_dump_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_registration_t *reg = vl_api_client_index_to_registration(mp->client_index);
  if (!reg) return;
  u32 id = clib_net_to_host_u32(mp->policy_id);
  if (id != ~0) {
    send_counters(km, reg, mp->context, id);
    return;
  }
  for (u32 i = 0; i < kp_policy_max_id(km->tables); i++) send_counters(km, reg, mp->context, i);
}

static void vl_api_kpol_flow_stats_t_handler(vl_api_kpol_flow_stats_t *mp) {
  kpol_main_t *km = &kpol_main;
  vl_api_kpol_flow_stats_reply_t *rmp;
  int rv = 0;
  kp_worker_stats_t sum = {0};
  u64 flows = 0;
  for (u32 i = 0; i < vec_len(km->workers); i++) {
    const kp_worker_stats_t *s = kp_worker_stats(km->workers[i]);
    flows += kp_worker_n_flows(km->workers[i]);
    sum.flows_created += s->flows_created;
    sum.flow_hits += s->flow_hits;
    sum.reply_hits += s->reply_hits;
    sum.expired += s->expired;
    sum.table_full += s->table_full;
    sum.reevaluated += s->reevaluated;
  }
  REPLY_MACRO2(VL_API_KPOL_FLOW_STATS_REPLY, ({
                 rmp->flows = clib_host_to_net_u64(flows);
                 rmp->flows_created = clib_host_to_net_u64(sum.flows_created);
                 rmp->flow_hits = clib_host_to_net_u64(sum.flow_hits);
                 rmp->reply_hits = clib_host_to_net_u64(sum.reply_hits);
                 rmp->expired = clib_host_to_net_u64(sum.expired);
                 rmp->table_full = clib_host_to_net_u64(sum.table_full);
                 rmp->reevaluated = clib_host_to_net_u64(sum.reevaluated);
               }));
}

#include <vnet/format_fns.h>
#include <kpol/kpol.api.c>

/* ---- lifecycle ---- */

static clib_error_t *kpol_interface_add_del(vnet_main_t *vnm, u32 sw_if_index, u32 is_add) {
  kpol_main_t *km = &kpol_main;
  /* a deleted interface keeps no policy: its index may be reused */
  if (!is_add && km->tables && kp_attached(km->tables, sw_if_index) >= 0)
    kpol_interface_attach(sw_if_index, 0, 0);
  return 0;
}
VNET_SW_INTERFACE_ADD_DEL_FUNCTION(kpol_interface_add_del);

static clib_error_t *kpol_config(vlib_main_t *vm, unformat_input_t *input) {
  kpol_main_t *km = &kpol_main;
  u32 v;
  while (unformat_check_input(input) != UNFORMAT_END_OF_INPUT) {
    if (unformat(input, "max-flows-per-thread %u", &v) && v > 0)
      km->max_flows = v;
    else if (unformat(input, "tcp-timeout %u", &v))
      km->timeouts.tcp = (u64)v * 1000;
    else if (unformat(input, "udp-timeout %u", &v))
      km->timeouts.udp = (u64)v * 1000;
    else if (unformat(input, "other-timeout %u", &v))
      km->timeouts.other = (u64)v * 1000;
    else
      return clib_error_return(0, "unknown kpol input '%U'", format_unformat_error, input);
  }
  return 0;
}
VLIB_CONFIG_FUNCTION(kpol_config, "kpol");

static clib_error_t *kpol_init(vlib_main_t *vm) {
  kpol_main_t *km = &kpol_main;
  km->vnet_main = vnet_get_main();
  km->max_flows = 65536;
  km->timeouts = (kp_timeouts_t){.tcp = 3600 * 1000, .udp = 120 * 1000, .other = 30 * 1000};
  km->msg_id_base = setup_message_id_table();
  const u32 nodes[2][2] = {{kpol_ip4_in_node.index, kpol_ip4_out_node.index},
                           {kpol_ip6_in_node.index, kpol_ip6_out_node.index}};
  km->threads = kp_handoff_init(km->fq_index, nodes);
  return 0;
}
VLIB_INIT_FUNCTION(kpol_init);

/* Sized when the main loop starts: the thread count is known (thread init
 * runs before any init function) and the "kpol { }" config has been read;
 * API messages, the only writers, are served only from the main loop. */
static clib_error_t *kpol_main_loop_enter(vlib_main_t *vm) {
  kpol_main_t *km = &kpol_main;
  u32 n = vlib_get_thread_main()->n_vlib_mains;
  u64 seed = clib_cpu_time_now();
  km->tables = kp_tables_new(n, seed);
  if (!km->tables) return clib_error_return(0, "kpol: cannot allocate tables for %u threads", n);
  vec_validate(km->workers, n - 1);
  for (u32 i = 0; i < n; i++) {
    km->workers[i] = kp_worker_new(i, km->max_flows, &km->timeouts, seed ^ (i + 1));
    if (!km->workers[i])
      return clib_error_return(0, "kpol: cannot allocate %u flows for thread %u", km->max_flows, i);
  }
  return 0;
}
VLIB_MAIN_LOOP_ENTER_FUNCTION(kpol_main_loop_enter);

/* ---- CLI ---- */

static clib_error_t *show_kpol_fn(vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd) {
  kpol_main_t *km = &kpol_main;
  if (!km->tables) return 0;
  for (u32 sw = 0; sw < kp_attach_max_sw_if(km->tables); sw++) {
    i64 pol = kp_attached(km->tables, sw);
    if (pol >= 0)
      vlib_cli_output(vm, "%U: policy %lld", format_vnet_sw_if_index_name, km->vnet_main, sw, pol);
  }
  for (u32 id = 0; id < kp_policy_max_id(km->tables); id++) {
    for (int d = 0; d < 2; d++) {
      int nr = kp_policy_n_rules(km->tables, id, (kp_dir_t)d);
      if (nr == KP_E_NOENT) break;
      if (nr < 0) {
        vlib_cli_output(vm, "policy %u %s: not isolated", id, d ? "egress" : "ingress");
        continue;
      }
      u64 c[KP_MAX_RULES + 1];
      kp_policy_counters(km->tables, id, (kp_dir_t)d, c, (u32)nr + 1);
      vlib_cli_output(vm, "policy %u %s: %d rules, default-deny %llu", id, d ? "egress" : "ingress",
                      nr, c[0]);
      for (int i = 0; i < nr; i++) vlib_cli_output(vm, "  rule %d: %llu", i, c[i + 1]);
    }
  }
  for (u32 i = 0; i < vec_len(km->workers); i++) {
    const kp_worker_stats_t *s = kp_worker_stats(km->workers[i]);
    vlib_cli_output(vm, "thread %u: %u flows, %llu created, %llu hits, %llu replies, %llu expired, %llu table-full",
                    i, kp_worker_n_flows(km->workers[i]), s->flows_created, s->flow_hits, s->reply_hits,
                    s->expired, s->table_full);
  }
  return 0;
}

VLIB_CLI_COMMAND(show_kpol_command, static) = {
  .path = "show kpol",
  .short_help = "show kpol",
  .function = show_kpol_fn,
};

VLIB_PLUGIN_REGISTER() = {
  .version = VPP_BUILD_VER,
  .description = "Kubernetes network policy (stateful, ipsets)",
};
