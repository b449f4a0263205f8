"""Publishing this node's own annotations (public keys, key epochs) on its Node object.

Owns: one background thread that merge-patches ``metadata.annotations`` of
one Node with the latest set it was given, retrying with backoff until the
API server accepts it. The caller (the agent loop) never waits for the API
server; a newer set replaces a pending one, so only the latest is sent.

Never secrets: callers hand over public values only, and this module logs
annotation names, never values.
Must not touch: other fields of the Node, other objects.
"""
from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping

from kubernetes import client
from kubernetes.client.rest import ApiException

from .source import BackoffPolicy

log = logging.getLogger(__name__)


class NodeAnnotator:
    def __init__(self, api_client: client.ApiClient, *, backoff: BackoffPolicy | None = None):
        self._api = client.CoreV1Api(api_client)
        self._backoff = backoff or BackoffPolicy(initial_s=0.2, max_s=30.0)
        self._cond = threading.Condition()
        self._pending: tuple[str, dict[str, str]] | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self.patches = 0  # accepted patches (tests, metrics)

    def publish(self, node_name: str, annotations: Mapping[str, str]) -> None:
        with self._cond:
            self._pending = (node_name, dict(annotations))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vppagent-node-annotator", daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                node, annotations = self._pending  # type: ignore[misc]
                self._pending = None
            try:
                self._api.patch_node(node, {"metadata": {"annotations": annotations}})
                self.patches += 1
                failures = 0
                log.info("node annotations published", extra={"node": node, "keys": ",".join(sorted(annotations))})
            except (ApiException, OSError, ValueError) as e:
                failures += 1
                delay = min(self._backoff.max_s, self._backoff.initial_s * 2 ** min(failures - 1, 16))
                delay *= 0.8 + 0.4 * self._rng.random()
                log.warning("publishing node annotations failed; retrying",
                            extra={"node": node, "error": str(getattr(e, "reason", e)), "retry_in_s": round(delay, 2)})
                with self._cond:
                    if self._pending is None:  # nothing newer: retry this one
                        self._pending = (node, annotations)
                    self._cond.wait(delay)
