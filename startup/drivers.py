"""Uplink drivers: which ones exist, which can work on this node, and ``auto``.

Owns the driver names, the pre-flight probe of each (plugin present, kernel
driver and PCI device as the driver needs) and the ``auto`` order. Probing
changes nothing. Attaching the uplink to VPP is in :mod:`startup.vppside`.

``auto`` order (fastest first, af_packet last because it always works on a
kernel netdev): rdma, af_xdp, vmxnet3, virtio, dpdk, af_packet.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import DriverUnavailableError, UnsupportedDriverError
from .linkstate import Link

DRIVERS = ("af_packet", "af_xdp", "dpdk", "virtio", "rdma", "vmxnet3")
AUTO_ORDER = ("rdma", "af_xdp", "vmxnet3", "virtio", "dpdk", "af_packet")
# Drivers whose takeover this version implements; the others are probed and
# reported, and ``auto`` falls back past them.
IMPLEMENTED = frozenset({"af_packet"})

_PLUGIN = {"af_packet": "af_packet", "af_xdp": "af_xdp", "dpdk": "dpdk", "virtio": None,
           "rdma": "rdma", "vmxnet3": "vmxnet3"}
_KERNEL_DRIVER = {"rdma": ("mlx5_core",), "vmxnet3": ("vmxnet3",), "virtio": ("virtio_net", "virtio-pci")}
_NEEDS_PCI = frozenset({"dpdk", "virtio", "vmxnet3"})


@dataclass(frozen=True)
class Probe:
    driver: str
    ok: bool
    reason: str = ""


def plugin_dir(vpp_bin: str | None) -> Path | None:
    """VPP's plugin directory next to its binary (``<prefix>/lib*/[<triplet>/]vpp_plugins``), if any."""
    if not vpp_bin:
        return None
    prefix = Path(vpp_bin).resolve().parent.parent
    for d in sorted([*prefix.glob("lib*/vpp_plugins"), *prefix.glob("lib*/*/vpp_plugins")]):
        if d.is_dir():
            return d
    return None


def probe(driver: str, link: Link, plugins: Path | None) -> Probe:
    if driver not in DRIVERS:
        raise UnsupportedDriverError(
            f"unsupported uplink driver {driver!r}; choose one of {', '.join(DRIVERS)} or 'auto'")
    plugin = _PLUGIN[driver]
    if plugin and plugins is not None and not (plugins / f"{plugin}_plugin.so").exists():
        return Probe(driver, False, f"VPP plugin {plugin}_plugin.so not in {plugins}")
    kdrv = _KERNEL_DRIVER.get(driver)
    if kdrv and link.driver not in kdrv:
        return Probe(driver, False, f"{link.name} uses kernel driver {link.driver or 'none'!r}, "
                                    f"{driver} needs {' or '.join(kdrv)}")
    if driver in _NEEDS_PCI and not link.bus_info.count(":") >= 2:
        return Probe(driver, False, f"{link.name} is not a PCI device (bus {link.bus_info or 'none'!r})")
    if driver not in IMPLEMENTED:
        return Probe(driver, False, f"takeover with {driver} is not implemented in this version")
    return Probe(driver, True)


def choose(requested: str, link: Link, plugins: Path | None) -> tuple[str, list[Probe]]:
    """The driver to use and every probe made. Raises before any change."""
    if requested == "auto":
        probes = [probe(d, link, plugins) for d in AUTO_ORDER]
        for p in probes:
            if p.ok:
                return p.driver, probes
        raise DriverUnavailableError("no driver works for " + link.name + ": " +
                                     "; ".join(f"{p.driver}: {p.reason}" for p in probes))
    p = probe(requested, link, plugins)
    if not p.ok:
        raise DriverUnavailableError(f"driver {requested} cannot take over {link.name}: {p.reason}")
    return requested, [p]
