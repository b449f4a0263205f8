"""Kubernetes sources: list+watch the API and turn it into model events.

Owns: translating the Kubernetes API into ``vppagent.model.k8s`` objects,
delivered as ``Upsert`` / ``Delete`` / ``Synced`` on the ONE queue the agent
passes in (threads and one queue: each source is a daemon thread, the
reconciler thread is the only consumer). Also owns the client configuration
and the ``EventRecorder`` any module may use to post Events.

Must not touch: VPP (never called from here), the reconciler's state.

Typical use::

    api = load_api_client()                       # in-cluster, or a kubeconfig path
    recorder = EventRecorder(api, host=node_name).start()
    q: queue.Queue[SourceEvent] = queue.Queue()
    group = SourceGroup.for_node(api, q, node_name=node_name, recorder=recorder).start()
    ...
    group.stop(); recorder.stop()
"""
from .backoff import Backoff, BackoffPolicy
from .errors import KubeConfigError, SourceError, WatchExpired, WatchFailed
from vppagent.model.events import Delete, SourceEvent, Synced, Upsert
from .group import SourceGroup
from .kinds import (
    ALL_KINDS,
    ENDPOINT_SLICES,
    NAMESPACES,
    NETWORK_POLICIES,
    NODES,
    PODS,
    SERVICES,
    KindSpec,
)
from .kubeclient import api_client_for_host, load_api_client
from .recorder import EventRecorder, ObjectRef, RecorderStats
from .source import INVALID_REASON, KubeSource, SourceOptions, SourceStats

__all__ = [
    "ALL_KINDS", "ENDPOINT_SLICES", "INVALID_REASON", "NAMESPACES", "NETWORK_POLICIES", "NODES", "PODS",
    "SERVICES", "Backoff", "BackoffPolicy", "Delete", "EventRecorder", "KindSpec", "KubeConfigError",
    "KubeSource", "ObjectRef", "RecorderStats", "SourceError", "SourceEvent", "SourceGroup",
    "SourceOptions", "SourceStats", "Synced", "Upsert", "WatchExpired", "WatchFailed",
    "api_client_for_host", "load_api_client",
]
