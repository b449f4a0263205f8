"""One way to get a VPP API to test or measure against.

Owns where VPP's API definitions are for tests, why the real-VPP tier can or
cannot run here, and the three kinds of target:

- ``emulator``: the VPP API emulator (a test double over the real socket
  protocol), with or without our plugins' definitions;
- ``private_vpp``: a real VPP started from ``$VPPAGENT_VPP_BIN`` with a
  generated startup.conf (extra plugin directories, worker threads), stopped
  at the end; it can be restarted (a crash and a supervisor restart);
- ``external_vpp``: the VPP already serving ``$VPPAGENT_VPP_SOCKET``, which a
  test must leave as it found it and cannot restart.

Every target registers its teardown on an ``ExitStack``. A target that cannot
be had here raises ``Unavailable`` with the reason: a pytest skip inside a
test, an error line in a benchmark.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from startup.vpp_process import VppProcess
from testbed.emulator import Emulator
from testbed.emulator.apidefs import load_definitions as emulator_definitions
from vppagent.vpp.api_defs import PLUGIN_API_DIR
from vppagent.vpp.client import VppClient

REPO = Path(__file__).resolve().parents[1]
SHARED_API_DIR = REPO.parent / "shared" / "vpp-api" / "v26.06"


class Unavailable(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """This target cannot be had on this machine; the message says why.

    A pytest skip, so that a fixture or test asking for it is skipped with
    the reason; benchmarks catch it and print the reason.
    """

    def __init__(self, reason: str):
        super().__init__(reason, allow_module_level=True)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def api_dir() -> str:
    """VPP 26.06's API definitions: ``$VPPAGENT_API_DIR``, else ``../shared/vpp-api/v26.06``."""
    env = os.environ.get("VPPAGENT_API_DIR")
    if env:
        return env
    if not SHARED_API_DIR.is_dir():
        raise Unavailable(f"VPP API definitions not found: set VPPAGENT_API_DIR (looked in {SHARED_API_DIR})")
    return str(SHARED_API_DIR)


def vpp_binary() -> str | None:
    return os.environ.get("VPPAGENT_VPP_BIN") or None


def emulator_and_private_vpp() -> list[Any]:
    """pytest parameters of a ``vpp_bin`` argument: None (the emulator), and ``$VPPAGENT_VPP_BIN``
    (a private real VPP, marked ``real_vpp``; skipped without it)."""
    return [pytest.param(None, id="emulator"),
            pytest.param(vpp_binary(), id="real-vpp",
                         marks=[pytest.mark.real_vpp,
                                pytest.mark.skipif(not vpp_binary(), reason="needs VPPAGENT_VPP_BIN (a private VPP)")])]


def real_vpp_reason(*, private: bool = False) -> str | None:
    """Why the real-VPP tier cannot run here, or None when it can.

    ``private``: the caller must start its own VPP (plugins, workers, restarts),
    so a running VPP at ``$VPPAGENT_VPP_SOCKET`` is not enough.
    """
    binary = vpp_binary()
    if os.environ.get("VPPAGENT_VPP_SOCKET") and not private:
        return None
    if not binary:
        if private and os.environ.get("VPPAGENT_VPP_SOCKET"):
            return "this test starts a private VPP (plugins, workers or restarts): VPPAGENT_VPP_BIN is needed"
        return "no real VPP: set VPPAGENT_VPP_BIN (a vpp binary) or VPPAGENT_VPP_SOCKET"
    if not os.access(binary, os.X_OK):
        return f"VPPAGENT_VPP_BIN={binary} is not an executable"
    if os.geteuid() != 0:
        return "a private VPP needs root (af_packet, shared memory)"
    return None


def require_real_vpp(*, private: bool = False) -> None:
    why = real_vpp_reason(private=private)
    if why:
        raise Unavailable(why)


@dataclass
class Target:
    """A VPP API: its socket, whether it is a real VPP, and how to restart it."""

    name: str
    socket: str
    real: bool
    emu: Emulator | None = None
    proc: VppProcess | None = None
    workdir: Path | None = None
    api_dir: str = field(default_factory=api_dir)
    # A client connected by ``open``, for suites that want one ready.
    vpp: VppClient | None = None
    _stack: ExitStack | None = field(default=None, repr=False)

    def client(self, **kw: Any) -> VppClient:
        """A new connected client (the caller closes it). ``kw`` as ``VppClient``'s."""
        if "definitions" not in kw:
            kw.setdefault("api_dir", self.api_dir)
        return VppClient(self.socket, **kw).connect()

    def restart(self) -> None:
        """A VPP restart: the emulator wipes its state; a private VPP is killed and started again."""
        if self.emu is not None:
            self.emu.restart()
        elif self.proc is not None:
            self.proc.restart()
        else:
            raise Unavailable("cannot restart a VPP the test bed did not start")


def any_client() -> dict[str, Any]:
    """``client=`` arguments for a client that loads every definition and pins no CRCs:
    suites that call our plugins' messages, which the product's pinned set leaves out."""
    from vppagent.vpp.api_defs import load_definitions

    return {"definitions": load_definitions(api_dir()), "required": {}}


def _with_client(stack: ExitStack, target: Target, client: dict[str, Any] | None) -> Target:
    if client is not None:
        target.vpp = stack.enter_context(target.client(**client))
    return target


def api_dir_with_plugins(tmp: Path) -> Path:
    """VPP's definitions plus ours (``vppagent/vpp/plugin_api``) in one directory: the emulator reads one."""
    d = tmp / "api"
    shutil.copytree(api_dir(), d, copy_function=os.symlink)
    (d / "ourplugins").mkdir()
    for f in PLUGIN_API_DIR.glob("*.api.json"):
        shutil.copy(f, d / "ourplugins" / f.name)
    return d


def emulator(stack: ExitStack, workdir: Path, *, with_plugins: bool = False, client: dict[str, Any] | None = None,
             check_errors: bool = True, **emu_kw: Any) -> Target:
    """The emulator on ``workdir/api.sock``; with our plugins' definitions when ``with_plugins``.

    ``client``: also connect a client with these ``VppClient`` arguments (``target.vpp``).
    ``check_errors``: at teardown, fail on emulator bugs (handler exceptions).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    defs = emulator_definitions(api_dir_with_plugins(workdir) if with_plugins else api_dir())
    emu = Emulator(workdir / "api.sock", definitions=defs, **emu_kw)
    emu.start()
    if check_errors:
        stack.callback(_check_handler_errors, emu)
    stack.callback(emu.stop)
    target = Target("emulator" if with_plugins else "emulator-stock", emu.socket_path, False, emu=emu,
                    workdir=workdir)
    return _with_client(stack, target, client)


def _check_handler_errors(emu: Emulator) -> None:
    assert not emu.handler_errors, f"emulator bugs: {emu.handler_errors}"


def private_vpp(stack: ExitStack, workdir: Path | None = None, *, plugin_dirs: tuple[str | Path, ...] = (),
                workers: int | None = None, extra_conf: str = "", client: dict[str, Any] | None = None,
                name: str = "real", binary: str | None = None) -> Target:
    """A real VPP started from ``binary`` (default ``$VPPAGENT_VPP_BIN``), private to ``workdir``
    (a temp dir by default).

    ``plugin_dirs``: directories of extra plugins (ours); ``workers``: worker
    threads (``cpu { workers N }``; default ``$VPPAGENT_VPP_WORKERS``, else 0, so that
    a whole tier can be run with workers); ``extra_conf``: startup.conf sections
    appended as they are.
    """
    from startup.vpp_process import VppPaths, render_startup_conf

    if binary is None:
        require_real_vpp(private=True)
        binary = vpp_binary()
    assert binary is not None
    if workers is None:
        workers = int(os.environ.get("VPPAGENT_VPP_WORKERS") or 0)
    paths = tuple(str(d) for d in plugin_dirs)
    config = None
    if extra_conf:
        if workdir is None:
            raise ValueError("extra_conf needs an explicit workdir (the config names its paths)")
        config = render_startup_conf(VppPaths(workdir), plugin_paths=paths, workers=workers) + extra_conf
    proc = VppProcess(binary, workdir=workdir, config=config, plugin_paths=paths, workers=workers,
                      die_with_parent=True)
    stack.enter_context(proc)
    target = Target(name, str(proc.paths.api_socket), True, proc=proc, workdir=proc.workdir)
    return _with_client(stack, target, client)


def external_vpp(*, client: dict[str, Any] | None = None, stack: ExitStack | None = None) -> Target:
    """The VPP at ``$VPPAGENT_VPP_SOCKET``."""
    sock = os.environ.get("VPPAGENT_VPP_SOCKET")
    if not sock:
        raise Unavailable("no external VPP: VPPAGENT_VPP_SOCKET is not set")
    target = Target("real", sock, True)
    if client is not None:
        assert stack is not None, "a client needs a stack to be closed on"
        _with_client(stack, target, client)
    return target


def real_vpp(stack: ExitStack, workdir: Path | None = None, **kw: Any) -> Target:
    """A real VPP: the running one at ``$VPPAGENT_VPP_SOCKET`` if set, else a private one."""
    require_real_vpp()
    if os.environ.get("VPPAGENT_VPP_SOCKET") and not (kw.get("plugin_dirs") or kw.get("workers")):
        return external_vpp(client=kw.get("client"), stack=stack)
    return private_vpp(stack, workdir, **kw)


def any_vpp(stack: ExitStack, workdir: Path, *, say: Callable[[str], None] | None = None,
            **kw: Any) -> Target:
    """A real VPP when one is configured, otherwise the emulator (and ``say`` says so)."""
    if real_vpp_reason() is None:
        return real_vpp(stack, workdir / "vpp", **kw)
    if say is not None:
        say("no real VPP configured: using the VPP API emulator (a test double: no packets flow)")
    return emulator(stack, workdir, client=kw.get("client"))


__all__ = ["Target", "Unavailable", "any_client", "any_vpp", "api_dir", "api_dir_with_plugins", "emulator", "external_vpp",
           "private_vpp", "real_vpp", "real_vpp_reason", "require_real_vpp", "vpp_binary"]
