"""Micro-benchmark: vpp_papi's generic serializer vs the compiled codec.

Prints packs/s (and a few unpacks/s) for the messages bulk programming is made
of, and writes them to perf/results/codec_bench.json. Both sides are checked
to produce the same bytes / values before being timed.

    python -m perf.codec_bench [--seconds 1.0] [--api-dir DIR]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from vpp_papi.vpp_papi import VPPApiJSONFiles

from vppagent.vpp.codec import Codec  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_API_DIR = HERE.parents[1] / "shared/vpp-api/v26.06"
HEADER = {"_vl_msg_id": 123, "client_index": 7, "context": 42}


def route_add(i: int = 0) -> dict[str, Any]:
    """A /32 route with one next hop, as the agent sends it (i picks the prefix)."""
    return {
        **HEADER, "is_add": True, "is_multipath": False,
        "route": {
            "table_id": 0, "prefix": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32", "n_paths": 1,
            "paths": [{
                "sw_if_index": 3, "table_id": 0, "weight": 1, "preference": 0,
                "type": 0, "flags": 0, "proto": 0,
                "nh": {"address": {"ip4": bytes([10, 20, 0, 1])}},
                "n_labels": 0, "label_stack": [{}] * 16,
            }],
        },
    }


def cnat_translation(paths: int = 10, i: int = 0) -> dict[str, Any]:
    """A service VIP load-balanced over ``paths`` backends (i picks the VIP)."""
    return {
        **HEADER,
        "translation": {
            "vip": {"addr": f"10.96.{i >> 8 & 255}.{i & 255}", "sw_if_index": 0xFFFFFFFF, "port": 53},
            "id": 0, "ip_proto": 17, "is_real_ip": 1, "flags": 0, "lb_type": 0,
            "n_paths": paths, "flow_hash_config": 0,
            "paths": [
                {
                    "dst_ep": {"addr": f"10.{128 + (i >> 12 & 63)}.{i >> 4 & 255}.{(i & 15) * 16 + p}",
                               "port": 53,
                               "sw_if_index": 0xFFFFFFFF},
                    "src_ep": {"addr": "0.0.0.0", "sw_if_index": 0xFFFFFFFF},
                    "flags": 0,
                }
                for p in range(paths)
            ],
        },
    }


def set_flags(i: int = 0) -> dict[str, Any]:
    return {**HEADER, "sw_if_index": i & 0xFFFF, "flags": 1}


# Distinct inputs per call, more than the codec remembers conversions for:
# bulk programming sends each prefix once, so a benchmark repeating one dict
# would measure a cache, not the packer.
DISTINCT = 40_000


def rate(fn: Callable[[Any], Any], args: list[Any], seconds: float) -> float:
    """Calls per second of fn over args (cycled), best batch of about ``seconds``."""
    def batch(start: int, n: int) -> list[Any]:
        return list(itertools.islice(itertools.cycle(args), start % len(args), start % len(args) + n))

    n = 64
    while True:  # grow the batch until one batch takes a measurable time
        calls = batch(0, n)
        t0 = time.perf_counter()
        for a in calls:
            fn(a)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            break
        n *= 4
    best = dt
    for k in range(max(1, int(seconds / dt))):
        calls = batch((k + 1) * n, n)
        t0 = time.perf_counter()
        for a in calls:
            fn(a)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    ap.add_argument("--api-dir", default=os.environ.get("VPPAGENT_API_DIR", str(DEFAULT_API_DIR)))
    ap.add_argument("--out", default=str(HERE / "results/codec_bench.json"))
    args = ap.parse_args()

    _, messages, _ = VPPApiJSONFiles.load_api(apidir=args.api_dir)
    codec = Codec(messages)

    results: dict[str, Any] = {"pack": {}, "unpack": {}}
    cases = [
        ("ip_route_add_del", "1 path, /32", [route_add(i) for i in range(DISTINCT)]),
        ("cnat_translation_update", "10 paths", [cnat_translation(10, i) for i in range(DISTINCT)]),
        ("sw_interface_set_flags", "", [set_flags(i) for i in range(DISTINCT)]),
    ]
    print(f"{'pack':<40}{'vpp_papi/s':>14}{'compiled/s':>14}{'speedup':>9}")
    for name, note, ds in cases:
        msg = messages[name]
        compiled = codec.packer(name)
        assert codec.is_compiled(name, "pack"), name
        for d in ds[:200]:
            assert compiled(d) == msg.pack(d), f"{name}: compiled bytes differ for {d}"
        papi = rate(msg.pack, ds, args.seconds)
        ours = rate(compiled, ds, args.seconds)
        label = f"{name} ({note})" if note else name
        print(f"{label:<40}{papi:>14,.0f}{ours:>14,.0f}{ours / papi:>8.1f}x")
        results["pack"][name] = {"case": note, "vpp_papi_per_s": round(papi), "compiled_per_s": round(ours),
                                 "speedup": round(ours / papi, 2)}

    # Replies and details come back at the same rate the requests go out.
    details = messages["sw_interface_details"].pack({
        "_vl_msg_id": 9, "context": 42, "sw_if_index": 3, "sup_sw_if_index": 3,
        "l2_address": "02:fe:12:34:56:78", "flags": 3, "type": 0, "link_duplex": 2,
        "link_speed": 10_000_000, "link_mtu": 9000, "mtu": [1500, 1500, 1500, 1500],
        "interface_name": "tap0", "interface_dev_type": "virtio", "tag": "pod-eth0",
    })
    reply = messages["ip_route_add_del_reply"].pack({"_vl_msg_id": 9, "context": 42,
                                                     "retval": 0, "stats_index": 17})
    print(f"{'unpack':<40}{'vpp_papi/s':>14}{'compiled/s':>14}{'speedup':>9}")
    for name, data in (("ip_route_add_del_reply", reply), ("sw_interface_details", details)):
        msg = messages[name]
        compiled = codec.unpacker(name)
        assert codec.is_compiled(name, "unpack"), name
        assert compiled(data) == msg.unpack(data)[0], f"{name}: compiled values differ"
        papi = rate(lambda b, m=msg: m.unpack(b)[0], [data], args.seconds)
        ours = rate(compiled, [data], args.seconds)
        print(f"{name:<40}{papi:>14,.0f}{ours:>14,.0f}{ours / papi:>8.1f}x")
        results["unpack"][name] = {"vpp_papi_per_s": round(papi), "compiled_per_s": round(ours),
                                   "speedup": round(ours / papi, 2)}

    results["env"] = {"python": platform.python_version(), "machine": platform.machine(),
                      "cpus": os.cpu_count(), "seconds_per_measurement": args.seconds,
                      "distinct_pack_inputs": DISTINCT}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
