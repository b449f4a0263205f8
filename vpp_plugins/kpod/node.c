/*
 * Two fix-ups of the offload metadata VPP 26.06 leaves wrong on pod frames
 * (docs/upstream-vpp-af-packet-offloads.md), each a feature node the agent turns on per interface.
 *
 * kpod-gso-ip4: on the ip4-unicast arc of pod interfaces (af_packet with checksum/GSO),
 * marks IPv4 GSO buffers for an IPv4 header fix-up.
 *
 * Why: af_packet's RX (fill_cksum_offload) sets VNET_BUFFER_F_IS_IP4 and the TCP/UDP checksum
 * offload flags of a kernel GSO frame but never VNET_BUFFER_OFFLOAD_F_IP_CKSUM, and VPP's
 * segmentation (gso.h, gso_fixup_segmented_buf) picks its IPv4 or IPv6 header fix-up by that
 * flag: IPv4 segments VPP cuts itself (tunnels, an uplink without GSO) leave with the
 * super-frame's length and an IPv6 payload length written into the IPv4 header. Setting the
 * flag is what virtio/tap RX does; it also makes VPP recompute the IPv4 header checksum, which
 * the kernel had already made valid, so frames that are not segmented are unharmed.
 */
#include <vlib/vlib.h>
#include <vnet/vnet.h>
#include <vnet/buffer.h>
#include <vnet/feature/feature.h>
#include <vnet/ip/ip.h>
#include <vnet/udp/udp_packet.h>
#include <vnet/interface_output.h>
#include <vnet/plugin/plugin.h>
#include <vpp/app/version.h>

typedef enum
{
  KPOD_ERROR_FIXED,
  KPOD_N_ERROR,
} kpod_error_t;

/* Counts of work done, not of drops: info severity. */
static vlib_error_desc_t kpod_error_counters[] = {
  [KPOD_ERROR_FIXED] = { .name = "fixed",
			 .desc = "IPv4 GSO frames given the IPv4 header fix-up",
			 .severity = VL_COUNTER_SEVERITY_INFO },
};

static vlib_error_desc_t kpod_csum_counters[] = {
  [KPOD_ERROR_FIXED] = { .name = "completed",
			 .desc = "offloaded checksums computed before the tunnel",
			 .severity = VL_COUNTER_SEVERITY_INFO },
};

typedef enum
{
  KPOD_GSO_FIX,
  KPOD_CSUM_IP4,
  KPOD_CSUM_IP6,
} kpod_fix_t;

/* One buffer's fix-up; 1 when it changed something (the node's counter). */
static_always_inline u32
kpod_fix_one (vlib_main_t *vm, vlib_buffer_t *b, kpod_fix_t fix)
{
  const u32 gso4 = VNET_BUFFER_F_GSO | VNET_BUFFER_F_IS_IP4;
  if (fix == KPOD_GSO_FIX)
    {
      if ((b->flags & gso4) != gso4 || (vnet_buffer (b)->oflags & VNET_BUFFER_OFFLOAD_F_IP_CKSUM))
	return 0;
      vnet_buffer_offload_flags_set (b, VNET_BUFFER_OFFLOAD_F_IP_CKSUM);
      return 1;
    }
  /* A GSO frame here means the gso feature is off on this interface: cutting it is not ours
   * to do, and a checksum over 64 KB would be wrong for every segment anyway. */
  if ((b->flags & (VNET_BUFFER_F_OFFLOAD | VNET_BUFFER_F_GSO)) != VNET_BUFFER_F_OFFLOAD)
    return 0;
  vnet_calc_checksums_inline (vm, b, fix == KPOD_CSUM_IP4, fix == KPOD_CSUM_IP6);
  return 1;
}

static_always_inline uword
kpod_inline (vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame, kpod_fix_t fix)
{
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 changed = 0;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left > 0)
    {
      u32 next0;
      changed += kpod_fix_one (vm, b[0], fix);
      vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  if (changed)
    vlib_node_increment_counter (vm, node->node_index, KPOD_ERROR_FIXED, changed);
  return frame->n_vectors;
}

VLIB_NODE_FN (kpod_gso_ip4_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return kpod_inline (vm, node, frame, KPOD_GSO_FIX);
}
VLIB_REGISTER_NODE (kpod_gso_ip4_node) = {
  .name = "kpod-gso-ip4",
  .vector_size = sizeof (u32),
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_errors = KPOD_N_ERROR,
  .error_counters = kpod_error_counters,
};

VNET_FEATURE_INIT (kpod_gso_ip4, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "kpod-gso-ip4",
  .runs_before = VNET_FEATURES ("ip4-lookup"),
};

/*
 * kpod-csum-ip4 / kpod-csum-ip6: on the ip4-output / ip6-output arcs of a WireGuard interface,
 * computes the checksums a buffer still leaves to offload (a pod's partial TCP/UDP checksum)
 * before it is encrypted.
 *
 * Why: wg4-output-tun and wg6-output-tun encrypt the inner packet as it is, and their
 * wg_calc_checksum completes only the outer IPv6 UDP checksum: a pod's partial checksum leaves
 * the node sealed in, and the receiving pod drops every segment. ESP calls
 * vnet_calc_checksums_inline before it encrypts; this node does the same for WireGuard. It runs
 * after VPP's gso-ip4/gso-ip6 (which segment GSO frames and complete their segments' checksums),
 * so it sees frames that did not need segmenting: small TCP segments, ACKs, UDP.
 */
VLIB_NODE_FN (kpod_csum_ip4_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return kpod_inline (vm, node, frame, KPOD_CSUM_IP4);
}

VLIB_NODE_FN (kpod_csum_ip6_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return kpod_inline (vm, node, frame, KPOD_CSUM_IP6);
}

VLIB_REGISTER_NODE (kpod_csum_ip4_node) = {
  .name = "kpod-csum-ip4",
  .vector_size = sizeof (u32),
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_errors = KPOD_N_ERROR,
  .error_counters = kpod_csum_counters,
};

VLIB_REGISTER_NODE (kpod_csum_ip6_node) = {
  .name = "kpod-csum-ip6",
  .vector_size = sizeof (u32),
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_errors = KPOD_N_ERROR,
  .error_counters = kpod_csum_counters,
};

/* VPP tolerates an ordering constraint on a node it does not have (the wireguard plugin not
 * loaded), with a warning at start. */
VNET_FEATURE_INIT (kpod_csum_ip4, static) = {
  .arc_name = "ip4-output",
  .node_name = "kpod-csum-ip4",
  .runs_after = VNET_FEATURES ("gso-ip4"),
  .runs_before = VNET_FEATURES ("wg4-output-tun"),
};

VNET_FEATURE_INIT (kpod_csum_ip6, static) = {
  .arc_name = "ip6-output",
  .node_name = "kpod-csum-ip6",
  .runs_after = VNET_FEATURES ("gso-ip6"),
  .runs_before = VNET_FEATURES ("wg6-output-tun"),
};

VLIB_PLUGIN_REGISTER () = {
  .version = VPP_BUILD_VER,
  .description = "vppagent: offload metadata fix-ups on pod interfaces",
};
