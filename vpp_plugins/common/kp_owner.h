/*
 * Which thread owns a pod interface's connection state (kpol flows, ksvc sessions and affinity).
 *
 * Plain C, no VPP headers: the cores' tests drive it.
 *
 * Why one owner per interface, not per flow hash: kpol's flow key and ksvc's session key both
 * come from one pod interface (kpol: the interface the policy is attached to; ksvc: the client
 * pod's interface, which sees its requests on input and their replies on output), and ksvc's
 * NAT changes the 5-tuple between the two directions, so no symmetric flow hash finds both
 * halves of a translated connection; the interface does. A packet on another thread is handed
 * to the owner (kp_handoff.h); the tables stay per thread, without locks.
 */
#ifndef KP_OWNER_H
#define KP_OWNER_H

#include <stdint.h>

/* The owning thread of sw_if_index's state: thread 0 without workers, else one of the
 * n_workers threads from first_worker on (the main thread only hands off). */
static inline uint32_t kp_owner_thread(uint32_t sw_if_index, uint32_t first_worker, uint32_t n_workers) {
  return n_workers == 0 ? 0 : first_worker + sw_if_index % n_workers;
}

#endif
