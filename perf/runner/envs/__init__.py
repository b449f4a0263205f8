"""Where a scenario runs: a kernel baseline, a local real VPP with netns pods, two local VPPs, a cluster.

Every environment is a context manager yielding a ``Setup`` (envs/common.py)
and removes everything it made on exit, even after a failure. ``open_env``
picks the one a scenario names.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from perf.runner.envs.common import EnvUnavailable, Setup
from perf.runner.scenario import Scenario

__all__ = ["EnvUnavailable", "Setup", "open_env"]


@contextmanager
def open_env(sc: Scenario) -> Iterator[Setup]:
    if sc.env == "kernel":
        from perf.runner.envs.kernel import kernel_env as env
    elif sc.env == "local":
        from perf.runner.envs.local import local_env as env
    elif sc.env == "two-node":
        from perf.runner.envs.twonode import two_node_env as env
    else:
        from perf.runner.envs.kubectl import kubectl_env as env
    with env(sc) as setup:
        yield setup
