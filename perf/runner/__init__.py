"""The throughput runner: scenario files, environments, load generators, measurements and results."""
