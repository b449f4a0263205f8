/*
 * Runner of the shared vector files (vpp_plugins/kpol/vectors/NAME.txt) on the
 * C core; vppagent/policy/reference.py runs the same files in Python.
 */
#ifndef KP_VECTORS_H
#define KP_VECTORS_H

#include <stdio.h>

/* Runs one file; prints each mismatch to err. Returns the number of
 * mismatches, or -1 when the file cannot be read or does not parse. */
int kp_vectors_run_file(const char *path, FILE *err);

#endif
