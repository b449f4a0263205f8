"""Network namespace identity and entering a named netns from a worker thread.

Owns: the identity of the calling thread's netns (device and inode of
``/proc/thread-self/ns/net``), whether it is the host's (pid 1's) netns, and
a helper that runs a function in a named netns on a private thread, so the
caller's own namespace never changes.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class NetnsId:
    dev: int
    ino: int

    def to_json(self) -> dict[str, int]:
        return {"dev": self.dev, "ino": self.ino}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "NetnsId":
        return NetnsId(int(d["dev"]), int(d["ino"]))


def _ident(path: str) -> NetnsId:
    st = os.stat(path)
    return NetnsId(st.st_dev, st.st_ino)


def current() -> NetnsId:
    """The netns of the calling thread (not the process: a thread may have setns'd)."""
    return _ident("/proc/thread-self/ns/net")


def host() -> NetnsId | None:
    """The netns of pid 1, taken as the host's; None when pid 1 cannot be inspected."""
    try:
        return _ident("/proc/1/ns/net")
    except PermissionError:  # sandboxes hide pid 1's namespaces even from root
        return None


def named() -> set[NetnsId]:
    """Namespaces created with ``ip netns add`` (bind mounts under /run/netns)."""
    out = set()
    for d in ("/run/netns", "/var/run/netns"):
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for e in entries:
            try:
                out.add(_ident(os.path.join(d, e)))
            except OSError:
                pass
    return out


def is_host() -> bool:
    """Whether the calling thread is in the host's netns.

    When pid 1's netns is hidden, only a named netns counts as "not the host":
    an unknown namespace is treated as the host, the safe side.
    """
    here = current()
    h = host()
    if h is not None:
        return here == h
    return here not in named()


def run_in(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in the named netns on a fresh thread and return its result (or raise its error)."""
    from pyroute2 import netns as pnetns

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            pnetns.setns(name)
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
