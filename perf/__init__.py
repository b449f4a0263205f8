"""Benchmarks of vppagent; ``python -m perf`` runs throughput scenarios (perf/runner)."""
