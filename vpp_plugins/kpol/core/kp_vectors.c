/*
 * The vector-file grammar, read by the C core's tests (the Python twin is
 * vppagent/policy/reference.py; vectors/README.md states the grammar).
 * Names of sets, policies and interfaces map to ids in order of first use.
 */
#include "kp_vectors.h"

#include <stdlib.h>
#include <string.h>

#include "kpol_core.h"

#define MAX_TOK 512
#define MAX_NAMES 1024
#define NAME_LEN 64

typedef struct {
  char v[MAX_NAMES][NAME_LEN];
  uint32_t n;
} names_t;

typedef struct {
  kp_rule_spec_t spec;
  uint32_t peers[64], pp[64];
  kp_port_range_t ports[64];
} vrule_t;

typedef struct {
  uint8_t defined, isolated[2];
  vrule_t *rules[2];
  uint32_t n[2];
} vdraft_t;

typedef struct {
  names_t sets, pols, ifs;
  vdraft_t drafts[MAX_NAMES];
  kp_tables_t *t;
  kp_worker_t *w;
  kp_timeouts_t to;
  uint32_t max_flows;
  uint64_t now;
  const char *path;
  int line;
  FILE *err;
  int failures;
} vctx_t;

/* id of name (index + 1 for sets and policies so id 0 stays unused) */
static int name_id(names_t *n, const char *s, int create) {
  for (uint32_t i = 0; i < n->n; i++)
    if (strcmp(n->v[i], s) == 0) return (int)i;
  if (!create || n->n == MAX_NAMES || strlen(s) >= NAME_LEN) return -1;
  strcpy(n->v[n->n], s);
  return (int)n->n++;
}

static int parse_proto(const char *s, uint8_t *out) {
  static const struct { const char *n; uint8_t p; } names[] = {
      {"any", 0}, {"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"icmp6", 58}, {"sctp", 132}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(s, names[i].n) == 0) {
      *out = names[i].p;
      return 0;
    }
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end || v < 0 || v > 255) return -1;
  *out = (uint8_t)v;
  return 0;
}

static int parse_u16(const char *s, uint16_t *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end || v < 0 || v > 65535) return -1;
  *out = (uint16_t)v;
  return 0;
}

/* A member token; KP_E_INVAL for a malformed one, as the Python twin does. */
static int parse_member(int kind, const char *tok, kp_member_t *m) {
  char buf[128];
  memset(m, 0, sizeof(*m));
  if (strlen(tok) >= sizeof(buf)) return KP_E_INVAL;
  strcpy(buf, tok);
  if (kind == KP_SET_ADDR) return kp_addr_parse(&m->addr, buf);
  if (kind == KP_SET_ADDR_PORT) {
    char *c1 = strchr(buf, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2) return KP_E_INVAL;
    *c1 = *c2 = 0;
    if (kp_addr_parse(&m->addr, buf) || parse_proto(c1 + 1, &m->proto) ||
        parse_u16(c2 + 1, &m->port))
      return KP_E_INVAL;
    return 0;
  }
  char *p = buf;
  if (*p == '!') {
    m->exclude = 1;
    p++;
  }
  char *slash = strchr(p, '/');
  if (!slash) return KP_E_INVAL;
  *slash = 0;
  uint16_t plen;
  if (kp_addr_parse(&m->addr, p) || parse_u16(slash + 1, &plen) || plen > 255) return KP_E_INVAL;
  m->plen = (uint8_t)plen;
  return 0;
}

static const char *err_name(int rv) {
  switch (rv) {
  case KP_E_INVAL: return "inval";
  case KP_E_NOENT: return "noent";
  case KP_E_EXISTS: return "exists";
  case KP_E_BUSY: return "busy";
  case KP_E_KIND: return "kind";
  case KP_E_RANGE: return "range";
  case KP_E_NOMEM: return "nomem";
  default: return "none";
  }
}

static void mismatch(vctx_t *c, const char *text, const char *want, const char *got) {
  fprintf(c->err, "%s:%d: %s: expected %s, got %s\n", c->path, c->line, text, want, got);
  c->failures++;
}

static int new_worker(vctx_t *c) {
  kp_worker_free(c->w);
  c->w = kp_worker_new(0, c->max_flows, &c->to, 0x1234);
  return c->w ? 0 : -1;
}

static int parse_dir(const char *s) {
  return strcmp(s, "ingress") == 0 ? KP_INGRESS : strcmp(s, "egress") == 0 ? KP_EGRESS : -1;
}

static int parse_rule(vctx_t *c, vrule_t *r, char **tok, int n) {
  memset(r, 0, sizeof(*r));
  r->spec.any_peer = 1;
  for (int i = 0; i < n; i++) {
    char *eq = strchr(tok[i], '=');
    if (!eq) return -1;
    *eq = 0;
    char *val = eq + 1, *save = NULL;
    if (strcmp(tok[i], "peers") == 0) {
      if (strcmp(val, "*") == 0) continue;
      r->spec.any_peer = 0;
      if (strcmp(val, "-") == 0) continue;
      for (char *s = strtok_r(val, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        int id = name_id(&c->sets, s, 1);
        if (id < 0 || r->spec.n_peers == 64) return -1;
        r->peers[r->spec.n_peers++] = (uint32_t)id + 1;
      }
    } else if (strcmp(tok[i], "peerports") == 0) {
      for (char *s = strtok_r(val, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        int id = name_id(&c->sets, s, 1);
        if (id < 0 || r->spec.n_peer_ports == 64) return -1;
        r->pp[r->spec.n_peer_ports++] = (uint32_t)id + 1;
      }
    } else if (strcmp(tok[i], "ports") == 0) {
      if (strcmp(val, "*") == 0) continue;
      for (char *s = strtok_r(val, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (r->spec.n_ports == 64) return -1;
        kp_port_range_t *pr = &r->ports[r->spec.n_ports++];
        char *colon = strchr(s, ':');
        if (colon) *colon = 0;
        if (parse_proto(s, &pr->proto)) return -1;
        pr->lo = 0;
        pr->hi = 65535;
        if (colon) {
          char *dash = strchr(colon + 1, '-');
          if (dash) *dash = 0;
          if (parse_u16(colon + 1, &pr->lo)) return -1;
          pr->hi = pr->lo;
          if (dash && parse_u16(dash + 1, &pr->hi)) return -1;
        }
      }
    } else {
      return -1;
    }
  }
  return 0;
}

static int commit(vctx_t *c, int pid) {
  vdraft_t *d = &c->drafts[pid];
  kp_rule_spec_t *specs[2] = {NULL, NULL};
  kp_dir_spec_t ds[2];
  const kp_dir_spec_t *dirs[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    if (!d->isolated[k]) continue;
    specs[k] = calloc(d->n[k] + 1, sizeof(kp_rule_spec_t));
    for (uint32_t i = 0; i < d->n[k]; i++) {
      vrule_t *r = &d->rules[k][i];
      specs[k][i] = r->spec;
      specs[k][i].peers = r->peers;
      specs[k][i].ports = r->ports;
      specs[k][i].peer_ports = r->pp;
    }
    ds[k].n_rules = d->n[k];
    ds[k].rules = specs[k];
    dirs[k] = &ds[k];
  }
  int rv = kp_policy_set(c->t, (uint32_t)pid + 1, dirs);
  free(specs[0]);
  free(specs[1]);
  return rv;
}

/* Returns a core error code (compared with "fail"), or 1 for a parse error. */
static int step(vctx_t *c, char **tok, int n, const char *text) {
  const char *cmd = tok[0];
  char got[256], want[256];
  if (strcmp(cmd, "flows") == 0) {
    for (int i = 1; i < n; i++) {
      char *eq = strchr(tok[i], '=');
      if (!eq) return 1;
      *eq = 0;
      uint64_t v = strtoull(eq + 1, NULL, 10);
      if (strcmp(tok[i], "max") == 0) c->max_flows = (uint32_t)v;
      else if (strcmp(tok[i], "tcp") == 0) c->to.tcp = v;
      else if (strcmp(tok[i], "udp") == 0) c->to.udp = v;
      else if (strcmp(tok[i], "other") == 0) c->to.other = v;
      else return 1;
    }
    return new_worker(c) ? 1 : 0;
  }
  if (strcmp(cmd, "time") == 0 && n == 2) {
    c->now = strtoull(tok[1], NULL, 10);
    return 0;
  }
  if (strcmp(cmd, "set") == 0 && n == 3) {
    int kind = strcmp(tok[2], "addr") == 0 ? KP_SET_ADDR
               : strcmp(tok[2], "net") == 0 ? KP_SET_NET
               : strcmp(tok[2], "addrport") == 0 ? KP_SET_ADDR_PORT : 0;
    int id = name_id(&c->sets, tok[1], 1);
    if (!kind || id < 0) return 1;
    return kp_set_add(c->t, (uint32_t)id + 1, (kp_set_kind_t)kind);
  }
  if (strcmp(cmd, "delset") == 0 && n == 2) {
    int id = name_id(&c->sets, tok[1], 1);
    return id < 0 ? 1 : kp_set_del(c->t, (uint32_t)id + 1);
  }
  if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "del") == 0) && n >= 2) {
    int id = name_id(&c->sets, tok[1], 1);
    if (id < 0) return 1;
    int kind = kp_set_kind(c->t, (uint32_t)id + 1);
    if (kind < 0) return kind;
    kp_member_t *m = calloc((size_t)n, sizeof(*m));
    int rv = 0;
    for (int i = 2; i < n && !rv; i++) rv = parse_member(kind, tok[i], &m[i - 2]);
    if (!rv)
      rv = cmd[0] == 'a' ? kp_set_members_add(c->t, (uint32_t)id + 1, m, (uint32_t)n - 2, NULL)
                         : kp_set_members_del(c->t, (uint32_t)id + 1, m, (uint32_t)n - 2, NULL);
    free(m);
    return rv;
  }
  if (strcmp(cmd, "contains") == 0 && n == 4) {
    int id = name_id(&c->sets, tok[1], 1);
    int kind = id < 0 ? KP_E_NOENT : kp_set_kind(c->t, (uint32_t)id + 1);
    if (kind < 0) return kind;
    kp_member_t m;
    if (parse_member(kind == KP_SET_NET ? KP_SET_ADDR : kind, tok[2], &m)) return 1;
    int r = kp_set_contains(c->t, (uint32_t)id + 1, &m.addr, m.proto, m.port);
    if (r != (strcmp(tok[3], "yes") == 0)) mismatch(c, text, tok[3], r ? "yes" : "no");
    return 0;
  }
  if (strcmp(cmd, "policy") == 0 && n >= 2) {
    int id = name_id(&c->pols, tok[1], 1);
    if (id < 0) return 1;
    vdraft_t *d = &c->drafts[id];
    free(d->rules[0]);
    free(d->rules[1]);
    memset(d, 0, sizeof(*d));
    d->defined = 1;
    for (int i = 2; i < n; i++) {
      char *eq = strchr(tok[i], '=');
      if (!eq) return 1;
      *eq = 0;
      int dir = parse_dir(tok[i]);
      if (dir < 0) return 1;
      d->isolated[dir] = strcmp(eq + 1, "isolated") == 0;
    }
    return 0;
  }
  if (strcmp(cmd, "rule") == 0 && n >= 3) {
    int id = name_id(&c->pols, tok[1], 0), dir = parse_dir(tok[2]);
    if (id < 0 || dir < 0 || !c->drafts[id].isolated[dir]) return 1;
    vdraft_t *d = &c->drafts[id];
    vrule_t *nr = realloc(d->rules[dir], (d->n[dir] + 1) * sizeof(vrule_t));
    if (!nr) return 1;
    d->rules[dir] = nr;
    if (parse_rule(c, &nr[d->n[dir]], tok + 3, n - 3)) return 1;
    d->n[dir]++;
    return 0;
  }
  if (strcmp(cmd, "commit") == 0 && n == 2) {
    int id = name_id(&c->pols, tok[1], 0);
    return id < 0 ? 1 : commit(c, id);
  }
  if (strcmp(cmd, "delpolicy") == 0 && n == 2) {
    int id = name_id(&c->pols, tok[1], 1);
    return id < 0 ? 1 : kp_policy_del(c->t, (uint32_t)id + 1);
  }
  if (strcmp(cmd, "attach") == 0 && n == 3) {
    int ifi = name_id(&c->ifs, tok[1], 1), id = name_id(&c->pols, tok[2], 1);
    return (ifi < 0 || id < 0) ? 1 : kp_attach(c->t, (uint32_t)ifi, (uint32_t)id + 1);
  }
  if (strcmp(cmd, "detach") == 0 && n == 2) {
    int ifi = name_id(&c->ifs, tok[1], 1);
    return ifi < 0 ? 1 : kp_detach(c->t, (uint32_t)ifi);
  }
  if (strcmp(cmd, "packet") == 0) {
    /* packet IF DIR PROTO SRC SPORT DST DPORT -> allow|deny RULE REASON */
    if (n != 12 || strcmp(tok[8], "->") != 0) return 1;
    kp_packet_t p;
    int ifi = name_id(&c->ifs, tok[1], 1), dir = parse_dir(tok[2]);
    if (ifi < 0 || dir < 0 || parse_proto(tok[3], &p.proto) || kp_addr_parse(&p.src, tok[4]) ||
        parse_u16(tok[5], &p.sport) || kp_addr_parse(&p.dst, tok[6]) || parse_u16(tok[7], &p.dport))
      return 1;
    kp_verdict_t v = kp_process(c->t, c->w, (uint32_t)ifi, (kp_dir_t)dir, &p, c->now);
    snprintf(want, sizeof(want), "%s %s %s", tok[9], tok[10], tok[11]);
    snprintf(got, sizeof(got), "%s %d %s", v.allowed ? "allow" : "deny", v.rule,
             kp_reason_name((kp_reason_t)v.reason));
    if (strcmp(want, got) != 0) mismatch(c, text, want, got);
    return 0;
  }
  if (strcmp(cmd, "counters") == 0 && n >= 3) {
    int id = name_id(&c->pols, tok[1], 1), dir = parse_dir(tok[2]);
    if (id < 0 || dir < 0) return 1;
    uint64_t out[256];
    int k = kp_policy_counters(c->t, (uint32_t)id + 1, (kp_dir_t)dir, out, 256);
    size_t gl = 0, wl = 0;
    got[0] = want[0] = 0;
    for (int i = 0; i < k; i++)
      gl += (size_t)snprintf(got + gl, sizeof(got) - gl, "%s%llu", i ? " " : "",
                             (unsigned long long)out[i]);
    for (int i = 3; i < n; i++)
      wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s%s", i > 3 ? " " : "", tok[i]);
    if (strcmp(want, got) != 0) mismatch(c, text, want, got);
    return 0;
  }
  return 1;
}

int kp_vectors_run_file(const char *path, FILE *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(err, "%s: cannot open\n", path);
    return -1;
  }
  vctx_t *c = calloc(1, sizeof(*c));
  c->t = kp_tables_new(1, 0xabcdef);
  c->to = (kp_timeouts_t){.tcp = 300, .udp = 60, .other = 30};
  c->max_flows = 1024;
  c->path = path;
  c->err = err;
  int rc = new_worker(c);
  char line[8192];
  while (rc == 0 && fgets(line, sizeof(line), f)) {
    c->line++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char text[8192];
    strcpy(text, line);
    text[strcspn(text, "\r\n")] = 0;
    char *tok[MAX_TOK], *save = NULL;
    int n = 0;
    for (char *s = strtok_r(line, " \t\r\n", &save); s && n < MAX_TOK;
         s = strtok_r(NULL, " \t\r\n", &save))
      tok[n++] = s;
    if (n == 0) continue;
    const char *expect = NULL;
    char **cmd = tok;
    if (strcmp(tok[0], "fail") == 0) {
      if (n < 3) rc = -1;
      expect = tok[1];
      cmd = tok + 2;
      n -= 2;
    }
    if (rc) break;
    int r = step(c, cmd, n, text);
    if (r == 1) {
      fprintf(err, "%s:%d: does not parse: %s\n", path, c->line, text);
      rc = -1;
      break;
    }
    const char *got = r < 0 ? err_name(r) : "none";
    if ((expect || r < 0) && strcmp(expect ? expect : "none", got) != 0) {
      char w[64], g[64];
      snprintf(w, sizeof(w), "error %s", expect ? expect : "none");
      snprintf(g, sizeof(g), "error %s", got);
      mismatch(c, text, w, g);
    }
  }
  fclose(f);
  for (uint32_t i = 0; i < MAX_NAMES; i++) {
    free(c->drafts[i].rules[0]);
    free(c->drafts[i].rules[1]);
  }
  kp_worker_free(c->w);
  kp_tables_free(c->t);
  int failures = c->failures;
  free(c);
  return rc ? -1 : failures;
}
