/*
 * Layouts shared by the service table (ks_services.c) and the session code
 * (ks_session.c); not part of the public API.
 */
#ifndef KS_INTERNAL_H
#define KS_INTERNAL_H

#include "../../common/kp_hash.h"
#include "ksvc_core.h"

_Static_assert((int)KS_E_INVAL == (int)KP_HASH_E_INVAL && (int)KS_E_NOENT == (int)KP_HASH_E_NOENT &&
               (int)KS_E_EXISTS == (int)KP_HASH_E_EXISTS && (int)KS_E_NOMEM == (int)KP_HASH_E_NOMEM,
               "the hash's results pass through as this core's");

typedef struct {
  uint8_t vip[16];
  uint16_t port;
  uint8_t proto;
  uint8_t pad;
} ks_skey_t;

typedef struct {
  ks_skey_t key;
  uint32_t uid;       /* unique for the table's lifetime: slots are reused, uids never */
  uint32_t gen;       /* bumped by every update of this service */
  uint32_t timeout_s;
  uint32_t n;
  ks_backend_t *given;  /* as given, for dumps */
  ks_backend_t *sorted; /* for membership checks by binary search */
} ks_service_t;

struct ks_tables {
  uint64_t seed;
  uint32_t next_uid;
  uint32_t count;
  kp_hash_t index; /* ks_skey_t -> slot */
  ks_service_t **svc; /* [KS_MAX_SERVICES], NULL = free slot */
};

int ks_backend_cmp(const ks_backend_t *a, const ks_backend_t *b);
int ks_service_has(const ks_service_t *s, const ks_addr_t *a, uint16_t port);
/* The service of a packet's destination, or NULL. */
const ks_service_t *ks_service_of(const ks_tables_t *t, const ks_addr_t *dst, uint8_t proto,
                                  uint16_t port, uint32_t *slot);

#endif
