/*
 * What the plugins' fuzz targets share: the random driver used where
 * libFuzzer is not (a gcc build), so that every target also runs in the
 * deterministic tier. A target defines run(); shape(), if given, edits each
 * random input toward the states worth reaching (true counts, valid fields).
 * Built with -DKP_LIBFUZZER, a target has only LLVMFuzzerTestOneInput.
 */
#ifndef KP_FUZZ_DRIVER_H
#define KP_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef void (*kp_fuzz_run_fn)(const uint8_t *data, size_t size);
typedef void (*kp_fuzz_shape_fn)(uint8_t *buf, size_t len, uint64_t r);

static inline uint64_t kp_fuzz_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

/* The wire decoders' model of an address (vl_api_address_t's bytes at w), written apart from
 * kp_wire.h: a known family, and no IPv6 address inside ::ffff:0:0/96. */
static inline int kp_fuzz_addr_ok(const uint8_t *w) {
  if (w[0] == 0) return 1;
  if (w[0] != 1) return 0;
  for (int i = 0; i < 10; i++)
    if (w[1 + i]) return 1;
  return !(w[11] == 0xff && w[12] == 0xff);
}

/* Makes the 16 address bytes at a IPv4-mapped (::ffff:x.x.x.x, the last 4 kept). */
static inline void kp_fuzz_v4_mapped(uint8_t *a) {
  for (int i = 0; i < 10; i++) a[i] = 0;
  a[10] = a[11] = 0xff;
}

/* ./target [seconds] [seed]: random inputs of min_len..max_len-1 bytes for that long;
 * returns how many ran. */
static inline unsigned long kp_fuzz_drive(int argc, char **argv, size_t min_len, size_t max_len,
                                          kp_fuzz_run_fn run, kp_fuzz_shape_fn shape) {
  double seconds = argc > 1 ? atof(argv[1]) : 3.0;
  uint64_t s = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  uint8_t *buf = malloc(max_len);
  clock_t end = clock() + (clock_t)(seconds * CLOCKS_PER_SEC);
  unsigned long runs = 0;
  do {
    for (int k = 0; k < 64; k++) {
      size_t len = min_len + kp_fuzz_next(&s) % (max_len - min_len);
      for (size_t n = 0; n < len;) {
        uint64_t v = kp_fuzz_next(&s);
        for (int j = 0; j < 8 && n < len; j++, v >>= 8) buf[n++] = (uint8_t)v;
      }
      if (shape) shape(buf, len, kp_fuzz_next(&s));
      run(buf, len);
      runs++;
    }
  } while (clock() < end);
  free(buf);
  return runs;
}

#endif
