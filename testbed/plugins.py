"""Our VPP plugins (``vpp_plugins/``: kpol, ksvc, kpod) built out of tree against the VPP under test.

Owns finding a built plugin: ``$VPPAGENT_KPOL_PLUGIN_DIR`` / ``$VPPAGENT_KSVC_PLUGIN_DIR``
when set (the directory holding ``<name>_plugin.so``), otherwise one cmake build of
``vpp_plugins/`` against the prefix of ``$VPPAGENT_VPP_BIN`` (``find_package(VPP)``), in a
build directory per VPP prefix that later runs rebuild incrementally. Raises
``Unavailable`` with the reason when no plugin can be had (no VPP, no cmake, no VPP
development files).
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testbed.targets import REPO, Unavailable, require_real_vpp, vpp_binary

PLUGINS = ("kpol", "ksvc", "kpod")


@dataclass(frozen=True)
class Built:
    """One plugin: the directory VPP loads it from, and the API JSON the build generated."""

    name: str
    so_dir: Path
    api_json: Path | None


def vpp_prefix() -> Path:
    """The install prefix of ``$VPPAGENT_VPP_BIN`` (``<prefix>/bin/vpp``)."""
    binary = vpp_binary()
    if binary is None:
        raise Unavailable("no VPP to build our plugins against: set VPPAGENT_VPP_BIN")
    return Path(binary).resolve().parents[1]


def plugin(name: str) -> Built:
    """Plugin ``name`` (kpol or ksvc), from its environment variable or from the build."""
    if name not in PLUGINS:
        raise ValueError(f"unknown plugin {name!r} (ours are {', '.join(PLUGINS)})")
    require_real_vpp(private=True)
    var = f"VPPAGENT_{name.upper()}_PLUGIN_DIR"
    given = os.environ.get(var)
    if given:
        if not (Path(given) / f"{name}_plugin.so").is_file():
            raise Unavailable(f"{var}={given} holds no {name}_plugin.so")
        api = next(Path(given).rglob(f"{name}.api.json"), None)
        return Built(name, Path(given), api)
    build = _build(str(vpp_prefix()))
    so = next(build.rglob(f"{name}_plugin.so"), None)
    api = next(build.rglob(f"{name}.api.json"), None)
    if so is None:
        raise AssertionError(f"the plugin build in {build} produced no {name}_plugin.so")
    return Built(name, so.parent, api)


def plugin_dirs(*names: str) -> tuple[Path, ...]:
    """The distinct directories holding ``names``, for a startup.conf's ``add-path``."""
    return tuple(dict.fromkeys(plugin(n).so_dir for n in names))


@functools.lru_cache(maxsize=None)
def _build(prefix: str) -> Path:
    if not (list(Path(prefix).glob("lib*/cmake/vpp/VPPConfig.cmake"))
            + list(Path(prefix).glob("lib/*/cmake/vpp/VPPConfig.cmake"))):
        raise Unavailable(f"no VPP cmake package under {prefix}: install vpp-dev, or set "
                          "VPPAGENT_KPOL_PLUGIN_DIR and VPPAGENT_KSVC_PLUGIN_DIR")
    if shutil.which("cmake") is None:
        raise Unavailable("cmake not installed: set VPPAGENT_KPOL_PLUGIN_DIR and VPPAGENT_KSVC_PLUGIN_DIR")
    tag = hashlib.sha256(f"{REPO}:{prefix}".encode()).hexdigest()[:12]
    build = Path(tempfile.gettempdir()) / f"vppagent-plugins-{tag}"
    for cmd in (["cmake", "-S", str(REPO / "vpp_plugins"), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j2"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return build


__all__ = ["Built", "PLUGINS", "plugin", "plugin_dirs", "vpp_prefix"]
