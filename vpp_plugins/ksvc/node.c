/*
 * ksvc graph nodes: services with ClientIP affinity on pod interfaces.
 *
 * ksvc-ip4 / ksvc-ip6 sit on the ip4-unicast / ip6-unicast arcs, before
 * cnat's input nodes and kpol's pod-egress check (so policy sees the
 * backend, as with kube-proxy): a client's packet to a service VIP:port is
 * DNATed to its backend. ksvc-ip4-out / ksvc-ip6-out sit on the output arcs
 * after kpol's pod-ingress check: a backend's reply going to the client gets
 * the VIP back as its source. Sessions and affinity are per thread: with
 * workers, a packet first goes to the thread that owns its client pod's
 * interface (common/kp_handoff.h), where both directions of the session and
 * the client's affinity live.
 */
#include <vlib/vlib.h>
#include <vnet/vnet.h>
#include <vnet/feature/feature.h>
#include <vnet/ip/ip4_packet.h>
#include <vnet/ip/ip6_packet.h>
#include <vnet/ip/format.h>

#include <common/kp_handoff.h>
#include <ksvc/ksvc.h>
#include <ksvc/ksvc.api_enum.h>

typedef enum {
  KSVC_NEXT_DROP,
  KSVC_N_NEXT,
} ksvc_next_t;

typedef struct {
  u32 sw_if_index;
  u8 action, proto, parsed;
  u16 sport, dport, new_port;
  ks_addr_t new_addr;
} ksvc_trace_t;

static u8 *format_ksvc_trace(u8 *s, va_list *args) {
  CLIB_UNUSED(vlib_main_t * vm) = va_arg(*args, vlib_main_t *);
  CLIB_UNUSED(vlib_node_t * node) = va_arg(*args, vlib_node_t *);
  ksvc_trace_t *t = va_arg(*args, ksvc_trace_t *);
  s = format(s, "ksvc: sw_if_index %u proto %u %u -> %u: %s", t->sw_if_index, t->proto, t->sport, t->dport,
             t->parsed ? ks_action_name((ks_action_t)t->action) : "not parsed");
  if (t->action == KS_DNAT || t->action == KS_UNDNAT) {
    if (ks_addr_is_v4(&t->new_addr))
      s = format(s, " %U:%u", format_ip4_address, t->new_addr.b + 12, t->new_port);
    else
      s = format(s, " [%U]:%u", format_ip6_address, t->new_addr.b, t->new_port);
  }
  return s;
}

always_inline void ksvc_process(vlib_main_t *vm, vlib_node_runtime_t *node, u32 *from, u32 n, int is_output) {
  ksvc_main_t *km = &ksvc_main;
  ks_worker_t *w = km->workers[vm->thread_index];
  const ks_tables_t *t = km->tables;
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = n;
  u32 n_translated = 0, n_untranslatable = 0;
  u64 now = ksvc_now_ms(vm);

  vlib_get_buffers(vm, from, bufs, n_left);
  /* a little expiry per frame keeps idle sessions from holding slots */
  ks_worker_expire(w, now, 8);

  while (n_left > 0) {
    if (n_left > 2) {
      vlib_prefetch_buffer_header(b[1], LOAD);
      vlib_prefetch_buffer_data(b[1], LOAD);
    }
    vnet_feature_next_u16(&next[0], b[0]);
    u8 *h = vlib_buffer_get_current(b[0]);
    i32 avail = b[0]->current_length;
    if (is_output) {
      h += vnet_buffer(b[0])->ip.save_rewrite_length;
      avail -= vnet_buffer(b[0])->ip.save_rewrite_length;
    }
    ks_packet_t p;
    ks_result_t r = {.action = KS_PASS};
    int parsed = avail > 0 && ks_parse(h, (u32)avail, &p);
    if (parsed && p.proto == 132 && (b[0]->flags & VLIB_BUFFER_NEXT_PRESENT)) {
      /* SCTP's CRC covers the whole packet; chained buffers are not walked */
      parsed = 0;
      n_untranslatable++;
    }
    if (parsed) {
      r = is_output ? ks_reverse(t, w, &p, now) : ks_forward(t, w, &p, now);
      if (r.action == KS_DNAT || r.action == KS_UNDNAT) {
        /* with checksum offload pending the field holds the pseudo-header sum */
        int partial = (b[0]->flags & VNET_BUFFER_F_OFFLOAD) &&
                      (vnet_buffer(b[0])->oflags &
                       (VNET_BUFFER_OFFLOAD_F_TCP_CKSUM | VNET_BUFFER_OFFLOAD_F_UDP_CKSUM));
        if (ks_rewrite(h, (u32)avail, &p, r.action == KS_DNAT, &r.addr, r.port, partial) == 0)
          n_translated++;
        else
          n_untranslatable++;
      } else if (r.action == KS_DROP_FULL) {
        next[0] = KSVC_NEXT_DROP;
        b[0]->error = node->errors[KSVC_ERROR_TABLE_FULL];
      } else if (r.action == KS_DROP_NO_BACKEND) {
        next[0] = KSVC_NEXT_DROP;
        b[0]->error = node->errors[KSVC_ERROR_NO_BACKEND];
      }
    }
    if (PREDICT_FALSE((node->flags & VLIB_NODE_FLAG_TRACE) && (b[0]->flags & VLIB_BUFFER_IS_TRACED))) {
      ksvc_trace_t *tr = vlib_add_trace(vm, node, b[0], sizeof(*tr));
      tr->sw_if_index = vnet_buffer(b[0])->sw_if_index[is_output ? VLIB_TX : VLIB_RX];
      tr->parsed = parsed;
      tr->action = (u8)r.action;
      tr->proto = parsed ? p.proto : 0;
      tr->sport = parsed ? p.sport : 0;
      tr->dport = parsed ? p.dport : 0;
      tr->new_addr = r.addr;
      tr->new_port = r.port;
    }
    b++;
    next++;
    n_left--;
  }
  vlib_buffer_enqueue_to_next(vm, node, from, nexts, n);
  vlib_node_increment_counter(vm, node->node_index, KSVC_ERROR_TRANSLATED, n_translated);
  vlib_node_increment_counter(vm, node->node_index, KSVC_ERROR_NOT_TRANSLATABLE, n_untranslatable);
}

always_inline uword ksvc_inline(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame, int is_ip6,
                                int is_output) {
  ksvc_main_t *km = &ksvc_main;
  u32 *from = vlib_frame_vector_args(frame), n = frame->n_vectors;
  u32 local[VLIB_FRAME_SIZE];
  n = kp_handoff(vm, node, km->threads, km->fq_index[is_ip6][is_output], is_output, &from, n, local,
                 KSVC_ERROR_HANDED_OFF, KSVC_ERROR_HANDOFF_CONGESTION);
  if (n) ksvc_process(vm, node, from, n, is_output);
  return frame->n_vectors;
}

static uword ksvc_ip4(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return ksvc_inline(vm, node, frame, 0, 0);
}
static uword ksvc_ip6(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return ksvc_inline(vm, node, frame, 1, 0);
}
static uword ksvc_ip4_out(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return ksvc_inline(vm, node, frame, 0, 1);
}
static uword ksvc_ip6_out(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return ksvc_inline(vm, node, frame, 1, 1);
}

#define KSVC_NODE(fn, nm)                                                                     \
  VLIB_REGISTER_NODE(fn##_node) = {                                                           \
    .function = fn,                                                                           \
    .name = nm,                                                                               \
    .vector_size = sizeof(u32),                                                               \
    .format_trace = format_ksvc_trace,                                                        \
    .type = VLIB_NODE_TYPE_INTERNAL,                                                          \
    .n_errors = KSVC_N_ERROR,                                                                 \
    .error_counters = ksvc_error_counters,                                                    \
    .n_next_nodes = KSVC_N_NEXT,                                                              \
    .next_nodes = {[KSVC_NEXT_DROP] = "error-drop"},                                          \
  };

KSVC_NODE(ksvc_ip4, "ksvc-ip4")
KSVC_NODE(ksvc_ip6, "ksvc-ip6")
KSVC_NODE(ksvc_ip4_out, "ksvc-ip4-out")
KSVC_NODE(ksvc_ip6_out, "ksvc-ip6-out")

/* Constraints naming nodes of plugins that are not loaded are ignored. */
VNET_FEATURE_INIT(ksvc_ip4_feat, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "ksvc-ip4",
  .runs_before = VNET_FEATURES("cnat-lookup-ip4", "cnat-input-ip4", "kpol-ip4-in", "ip4-lookup"),
};
VNET_FEATURE_INIT(ksvc_ip6_feat, static) = {
  .arc_name = "ip6-unicast",
  .node_name = "ksvc-ip6",
  .runs_before = VNET_FEATURES("cnat-lookup-ip6", "cnat-input-ip6", "kpol-ip6-in", "ip6-lookup"),
};
VNET_FEATURE_INIT(ksvc_ip4_out_feat, static) = {
  .arc_name = "ip4-output",
  .node_name = "ksvc-ip4-out",
  .runs_after = VNET_FEATURES("kpol-ip4-out"),
  .runs_before = VNET_FEATURES("interface-output"),
};
VNET_FEATURE_INIT(ksvc_ip6_out_feat, static) = {
  .arc_name = "ip6-output",
  .node_name = "ksvc-ip6-out",
  .runs_after = VNET_FEATURES("kpol-ip6-out"),
  .runs_before = VNET_FEATURES("interface-output"),
};
