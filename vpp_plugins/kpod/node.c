/*
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
#include <vnet/plugin/plugin.h>
#include <vpp/app/version.h>

typedef enum
{
  KPOD_ERROR_FIXED,
  KPOD_N_ERROR,
} kpod_error_t;

/* A count of work done, not of drops: info severity. */
static vlib_error_desc_t kpod_error_counters[] = {
  [KPOD_ERROR_FIXED] = { .name = "fixed",
			 .desc = "IPv4 GSO frames given the IPv4 header fix-up",
			 .severity = VL_COUNTER_SEVERITY_INFO },
};

VLIB_NODE_FN (kpod_gso_ip4_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 fixed = 0;
  const u32 gso4 = VNET_BUFFER_F_GSO | VNET_BUFFER_F_IS_IP4;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left > 0)
    {
      u32 next0;
      if ((b[0]->flags & gso4) == gso4 &&
	  !(vnet_buffer (b[0])->oflags & VNET_BUFFER_OFFLOAD_F_IP_CKSUM))
	{
	  vnet_buffer_offload_flags_set (b[0], VNET_BUFFER_OFFLOAD_F_IP_CKSUM);
	  fixed++;
	}
      vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  if (fixed)
    vlib_node_increment_counter (vm, node->node_index, KPOD_ERROR_FIXED, fixed);
  return frame->n_vectors;
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

VLIB_PLUGIN_REGISTER () = {
  .version = VPP_BUILD_VER,
  .description = "vppagent: offload metadata fix-ups on pod interfaces",
};
