/*
 * Handing packets to the thread that owns their pod interface's state (kp_owner.h), through a
 * VPP frame queue into the same feature node there, where they continue along the arc.
 *
 * VPP glue, shared by kpol's and ksvc's nodes; both use the same owner, so a packet crosses
 * threads at most once per arc.
 */
#ifndef KP_HANDOFF_H
#define KP_HANDOFF_H

#include <vlib/vlib.h>
#include <vlib/buffer_node.h>
#include <vnet/buffer.h>

#include <common/kp_owner.h>

typedef struct {
  u32 first_worker, n_workers; /* n_workers 0: one thread, no handoff */
} kp_threads_t;

/* From a plugin's init function (worker threads exist by then: thread init runs first): the
 * threads, and with workers a frame queue into each of the four nodes ([is_ip6][is_output]). */
static inline kp_threads_t kp_handoff_init(u32 fq_index[2][2], const u32 node_index[2][2]) {
  kp_threads_t th = {.first_worker = 1, .n_workers = vlib_num_workers()};
  if (th.n_workers > 0)
    for (int v6 = 0; v6 < 2; v6++)
      for (int out = 0; out < 2; out++) fq_index[v6][out] = vlib_frame_queue_main_init(node_index[v6][out], 0);
  return th;
}

/* With workers, keeps in `local` the buffers of `*from` whose owner is this thread (pointing
 * `*from` there and returning their count) and hands the others to their owners through frame
 * queue `fq_index`, counting them under the node's errors `err_handed` and, for what a full
 * queue dropped, `err_congested`. Without workers, returns `n` and changes nothing. */
static_always_inline u32 kp_handoff(vlib_main_t *vm, vlib_node_runtime_t *node, kp_threads_t th, u32 fq_index,
                                    int is_output, u32 **from, u32 n, u32 *local, u32 err_handed,
                                    u32 err_congested) {
  if (PREDICT_TRUE(th.n_workers == 0)) return n;
  u32 away[VLIB_FRAME_SIZE];
  u16 to[VLIB_FRAME_SIZE];
  u32 n_local = 0, n_away = 0;
  for (u32 i = 0; i < n; i++) {
    vlib_buffer_t *b = vlib_get_buffer(vm, (*from)[i]);
    u32 owner = kp_owner_thread(vnet_buffer(b)->sw_if_index[is_output ? VLIB_TX : VLIB_RX], th.first_worker,
                                th.n_workers);
    if (owner == vm->thread_index) {
      local[n_local++] = (*from)[i];
    } else {
      away[n_away] = (*from)[i];
      to[n_away++] = (u16)owner;
    }
  }
  *from = local;
  if (n_away) {
    u32 n_enq = vlib_buffer_enqueue_to_thread(vm, node, fq_index, away, to, n_away, 1 /* drop on congestion */);
    vlib_node_increment_counter(vm, node->node_index, err_handed, n_enq);
    if (n_enq < n_away) vlib_node_increment_counter(vm, node->node_index, err_congested, n_away - n_enq);
  }
  return n_local;
}

#endif
