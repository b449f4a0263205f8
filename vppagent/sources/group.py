"""The standard set of sources an agent on one node runs, started and stopped together.

Owns: which kinds an agent watches and with which selectors (this node's
pods, or every pod when policy needs them all), and their joint lifecycle.
Must not touch: the loop of one source (``source.py``), the queue's consumer.
"""
from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Sequence

from kubernetes import client

from .annotator import NodeAnnotator
from vppagent.model.events import SourceEvent
from .kinds import ALL_KINDS, PODS, KindSpec
from .recorder import EventRecorder
from .source import KubeSource, SourceOptions


class SourceGroup:
    """Several KubeSources feeding one queue."""

    def __init__(self, sources: Iterable[KubeSource], annotator: NodeAnnotator | None = None):
        self.sources: tuple[KubeSource, ...] = tuple(sources)
        self.annotator = annotator

    @classmethod
    def for_node(cls, api_client: client.ApiClient, out: queue.Queue[SourceEvent], *,
                 node_name: str | None = None, local_pods_only: bool = False,
                 recorder: EventRecorder | None = None, options: SourceOptions | None = None,
                 kinds: Sequence[KindSpec] = ALL_KINDS) -> SourceGroup:
        """One source per kind. Pods: all of them (policy selectors need every pod's
        labels and IPs), or only ``node_name``'s with ``local_pods_only``."""
        sources = []
        for spec in kinds:
            if spec is PODS and local_pods_only:
                if not node_name:
                    raise ValueError("local_pods_only needs node_name")
                sources.append(KubeSource(spec, api_client, out, name=f"pods@{node_name}",
                                          field_selector=f"spec.nodeName={node_name}",
                                          recorder=recorder, options=options))
            else:
                sources.append(KubeSource(spec, api_client, out, recorder=recorder, options=options))
        return cls(sources, NodeAnnotator(api_client))

    def patch_node_annotations(self, node_name: str, annotations: dict[str, str]) -> None:
        """Publish this node's annotations, asynchronously (see ``annotator.py``)."""
        if self.annotator is None:
            raise RuntimeError("this source group has no API client to patch with")
        self.annotator.publish(node_name, annotations)

    def start(self) -> SourceGroup:
        for s in self.sources:
            s.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every source (all are told first, then awaited); True if all ended."""
        for s in self.sources:
            s.stop(timeout=0)
        if self.annotator is not None:
            self.annotator.stop(timeout=0.5)
        deadline = time.monotonic() + timeout
        return all(s.stop(timeout=max(0.0, deadline - time.monotonic())) for s in self.sources)

    def wait_synced(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for s in self.sources:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not s.wait_synced(left):
                return False
        return True

    def __enter__(self) -> SourceGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
