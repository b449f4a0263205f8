"""Typed errors of node bring-up.

Every error raised before a change names what was wrong and where; the
``changed`` attribute of :class:`StartupError` says whether the node was
touched at all (it is False for every pre-flight error).
"""
from __future__ import annotations


class StartupError(RuntimeError):
    """Base of bring-up errors. ``changed`` is False when nothing was modified."""

    changed = False


class TemplateError(StartupError):
    """startup.conf template is malformed (unknown placeholder, stray ``$``, unbalanced braces)."""


class UplinkError(StartupError):
    """The uplink cannot be found or is not usable."""


class NoDefaultRouteError(UplinkError):
    pass


class UplinkNotFoundError(UplinkError):
    pass


class HostNetnsRefusedError(StartupError):
    """Refusing to touch the root (host) network namespace without the explicit flag."""


class DriverError(StartupError):
    pass


class UnsupportedDriverError(DriverError):
    """The driver name is not one we know."""


class DriverUnavailableError(DriverError):
    """A known driver cannot be used on this node (plugin, kernel driver or PCI device missing)."""


class SnapshotError(StartupError):
    pass


class SnapshotExistsError(SnapshotError):
    """A snapshot from an earlier run is still there: restore it before taking over again."""


class WrongNetnsError(SnapshotError):
    """The snapshot was taken in another network namespace; restoring here would damage it."""


class InterfaceMismatchError(SnapshotError):
    """The uplink here is not the interface the snapshot describes (ifindex, kind or MAC differ)."""


class TakeoverError(StartupError):
    """Takeover failed after changes began; the node was rolled back to the snapshot."""

    changed = True


class RestoreError(StartupError):
    """Restore did not reach the snapshot exactly; the snapshot file is kept for another try."""

    changed = True
