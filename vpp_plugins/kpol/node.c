/*
 * kpol graph nodes: the policy check on pod interfaces.
 *
 * kpol-ip4-in / kpol-ip6-in sit on the ip4-unicast / ip6-unicast arcs
 * (packets a pod sends: its egress); kpol-ip4-out / kpol-ip6-out sit on the
 * ip4-output / ip6-output arcs (packets going to a pod: its ingress). Each
 * packet is parsed to a 5-tuple and handed to kp_process with this thread's
 * flow table; a denied packet goes to error-drop with the reason counted.
 */
#include <vlib/vlib.h>
#include <vnet/vnet.h>
#include <vnet/feature/feature.h>
#include <vnet/ip/ip4_packet.h>
#include <vnet/ip/ip6_packet.h>
#include <vnet/ip/icmp46_packet.h>

#include <common/kp_handoff.h>
#include <kpol/kpol.h>
#include <kpol/kpol.api_enum.h>

typedef enum {
  KPOL_NEXT_DROP,
  KPOL_N_NEXT,
} kpol_next_t;

typedef struct {
  u32 sw_if_index;
  u8 dir, allowed, reason, flow_hit;
  i32 rule;
  u8 proto;
  u16 sport, dport;
} kpol_trace_t;

static u8 *format_kpol_trace(u8 *s, va_list *args) {
  CLIB_UNUSED(vlib_main_t * vm) = va_arg(*args, vlib_main_t *);
  CLIB_UNUSED(vlib_node_t * node) = va_arg(*args, vlib_node_t *);
  kpol_trace_t *t = va_arg(*args, kpol_trace_t *);
  return format(s, "kpol: sw_if_index %u %s proto %u %u -> %u: %s rule %d (%s%s)", t->sw_if_index,
                t->dir == KP_INGRESS ? "ingress" : "egress", t->proto, t->sport, t->dport,
                t->allowed ? "allow" : "deny", t->rule, kp_reason_name((kp_reason_t)t->reason),
                t->flow_hit ? ", flow" : "");
}

/* Ports of TCP, UDP and SCTP sit at the same offsets. */
always_inline int has_ports(u8 proto) { return proto == 6 || proto == 17 || proto == 132; }

always_inline void read_ports(kp_packet_t *p, const u8 *l4, i32 avail) {
  if (has_ports(p->proto) && avail >= 4) {
    p->sport = clib_net_to_host_u16(*(u16u *)l4);
    p->dport = clib_net_to_host_u16(*(u16u *)(l4 + 2));
  }
}

/* Returns 1 when the packet is neighbor discovery, which no policy governs
 * (without it IPv6 pods lose their neighbors). */
always_inline int parse_ip6(kp_packet_t *p, const u8 *h, i32 avail) {
  const ip6_header_t *ip = (const ip6_header_t *)h;
  kp_addr_from_v6(&p->src, ip->src_address.as_u8);
  kp_addr_from_v6(&p->dst, ip->dst_address.as_u8);
  u8 next = ip->protocol;
  i32 off = sizeof(ip6_header_t);
  /* a few extension headers, bounded; a non-first fragment has no ports */
  for (int i = 0; i < 4 && off + 8 <= avail; i++) {
    if (next == 0 || next == 43 || next == 60) {
      u8 n = h[off];
      off += (h[off + 1] + 1) * 8;
      next = n;
    } else if (next == 44) {
      u16 frag = clib_net_to_host_u16(*(u16u *)(h + off + 2));
      next = h[off];
      off += 8;
      if (frag & 0xfff8) {
        p->proto = next;
        return 0;
      }
    } else {
      break;
    }
  }
  p->proto = next;
  if (next == 58 && off + 1 <= avail) {
    u8 type = h[off];
    if (type >= ICMP6_router_solicitation && type <= ICMP6_redirect) return 1;
  }
  read_ports(p, h + off, avail - off);
  return 0;
}

always_inline void parse_ip4(kp_packet_t *p, const u8 *h, i32 avail) {
  const ip4_header_t *ip = (const ip4_header_t *)h;
  kp_addr_from_v4(&p->src, ip->src_address.as_u8);
  kp_addr_from_v4(&p->dst, ip->dst_address.as_u8);
  p->proto = ip->protocol;
  if (ip4_get_fragment_offset(ip) == 0) {
    i32 off = ip4_header_bytes(ip);
    read_ports(p, h + off, avail - off);
  }
}

always_inline void kpol_process(vlib_main_t *vm, vlib_node_runtime_t *node, u32 *from, u32 n,
                                int is_ip6, int is_output) {
  kpol_main_t *km = &kpol_main;
  kp_worker_t *w = km->workers[vm->thread_index];
  const kp_tables_t *t = km->tables;
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = n;
  u32 n_allowed = 0;
  u64 now = kpol_now_ms(vm);
  kp_dir_t dir = is_output ? KP_INGRESS : KP_EGRESS;

  vlib_get_buffers(vm, from, bufs, n_left);
  /* a little expiry per frame keeps idle flows from holding slots */
  kp_worker_expire(w, now, 8);

  while (n_left > 0) {
    if (n_left > 2) {
      vlib_prefetch_buffer_header(b[1], LOAD);
      vlib_prefetch_buffer_data(b[1], LOAD);
    }
    u32 sw_if_index = vnet_buffer(b[0])->sw_if_index[is_output ? VLIB_TX : VLIB_RX];
    vnet_feature_next_u16(&next[0], b[0]);
    const u8 *h = vlib_buffer_get_current(b[0]);
    i32 avail = b[0]->current_length;
    if (is_output) {
      h += vnet_buffer(b[0])->ip.save_rewrite_length;
      avail -= vnet_buffer(b[0])->ip.save_rewrite_length;
    }
    kp_packet_t p = {0};
    int exempt = 0;
    if (is_ip6)
      exempt = parse_ip6(&p, h, avail);
    else
      parse_ip4(&p, h, avail);
    kp_verdict_t v = exempt ? (kp_verdict_t){.allowed = 1, .reason = KP_REASON_NOT_ISOLATED, .rule = -1}
                            : kp_process(t, w, sw_if_index, dir, &p, now);
    if (PREDICT_TRUE(v.allowed)) {
      n_allowed++;
    } else {
      next[0] = KPOL_NEXT_DROP;
      b[0]->error = node->errors[v.reason == KP_REASON_TABLE_FULL ? KPOL_ERROR_TABLE_FULL
                                                                  : KPOL_ERROR_DEFAULT_DENY];
    }
    if (PREDICT_FALSE((node->flags & VLIB_NODE_FLAG_TRACE) && (b[0]->flags & VLIB_BUFFER_IS_TRACED))) {
      kpol_trace_t *tr = vlib_add_trace(vm, node, b[0], sizeof(*tr));
      tr->sw_if_index = sw_if_index;
      tr->dir = (u8)dir;
      tr->allowed = v.allowed;
      tr->reason = v.reason;
      tr->flow_hit = v.flow_hit;
      tr->rule = v.rule;
      tr->proto = p.proto;
      tr->sport = p.sport;
      tr->dport = p.dport;
    }
    b++;
    next++;
    n_left--;
  }
  vlib_buffer_enqueue_to_next(vm, node, from, nexts, n);
  /* drops are counted by error-drop from b->error; only passes are counted here */
  vlib_node_increment_counter(vm, node->node_index, KPOL_ERROR_ALLOWED, n_allowed);
}

always_inline uword kpol_inline(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame,
                                int is_ip6, int is_output) {
  kpol_main_t *km = &kpol_main;
  u32 *from = vlib_frame_vector_args(frame), n = frame->n_vectors;
  u32 local[VLIB_FRAME_SIZE];
  n = kp_handoff(vm, node, km->threads, km->fq_index[is_ip6][is_output], is_output, &from, n, local,
                 KPOL_ERROR_HANDED_OFF, KPOL_ERROR_HANDOFF_CONGESTION);
  if (n) kpol_process(vm, node, from, n, is_ip6, is_output);
  return frame->n_vectors;
}

static uword kpol_ip4_in(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return kpol_inline(vm, node, frame, 0, 0);
}
static uword kpol_ip4_out(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return kpol_inline(vm, node, frame, 0, 1);
}
static uword kpol_ip6_in(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return kpol_inline(vm, node, frame, 1, 0);
}
static uword kpol_ip6_out(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame) {
  return kpol_inline(vm, node, frame, 1, 1);
}

#define KPOL_NODE(fn, nm)                                                                     \
  VLIB_REGISTER_NODE(fn##_node) = {                                                           \
    .function = fn,                                                                           \
    .name = nm,                                                                               \
    .vector_size = sizeof(u32),                                                               \
    .format_trace = format_kpol_trace,                                                        \
    .type = VLIB_NODE_TYPE_INTERNAL,                                                          \
    .n_errors = KPOL_N_ERROR,                                                                 \
    .error_counters = kpol_error_counters,                                                    \
    .n_next_nodes = KPOL_N_NEXT,                                                              \
    .next_nodes = {[KPOL_NEXT_DROP] = "error-drop"},                                          \
  };

KPOL_NODE(kpol_ip4_in, "kpol-ip4-in")
KPOL_NODE(kpol_ip4_out, "kpol-ip4-out")
KPOL_NODE(kpol_ip6_in, "kpol-ip6-in")
KPOL_NODE(kpol_ip6_out, "kpol-ip6-out")

VNET_FEATURE_INIT(kpol_ip4_in_feat, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "kpol-ip4-in",
  .runs_before = VNET_FEATURES("ip4-lookup"),
};
VNET_FEATURE_INIT(kpol_ip4_out_feat, static) = {
  .arc_name = "ip4-output",
  .node_name = "kpol-ip4-out",
  .runs_before = VNET_FEATURES("interface-output"),
};
VNET_FEATURE_INIT(kpol_ip6_in_feat, static) = {
  .arc_name = "ip6-unicast",
  .node_name = "kpol-ip6-in",
  .runs_before = VNET_FEATURES("ip6-lookup"),
};
VNET_FEATURE_INIT(kpol_ip6_out_feat, static) = {
  .arc_name = "ip6-output",
  .node_name = "kpol-ip6-out",
  .runs_before = VNET_FEATURES("interface-output"),
};
