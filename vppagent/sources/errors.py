"""Typed errors of the Kubernetes sources.

Owns: the error classes; each carries the context an operator needs
(which source, which status, which file). Must not touch: handling policy.
"""
from __future__ import annotations


class SourceError(Exception):
    """Base of every error raised by vppagent.sources."""


class KubeConfigError(SourceError):
    """No usable client configuration (neither in-cluster nor a kubeconfig)."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"cannot configure the Kubernetes client from {where}: {reason}")


class WatchExpired(SourceError):
    """The API server no longer has the requested resourceVersion (HTTP 410 Gone)."""

    def __init__(self, source: str, resource_version: str | None, message: str = ""):
        self.source = source
        self.resource_version = resource_version
        super().__init__(f"{source}: resourceVersion {resource_version} expired (410 Gone) {message}".rstrip())


class WatchFailed(SourceError):
    """A watch stream carried an ERROR event other than 410, or could not be parsed."""

    def __init__(self, source: str, code: int | None, reason: str):
        self.source = source
        self.code = code
        self.reason = reason
        super().__init__(f"{source}: watch failed (code {code}): {reason}")
