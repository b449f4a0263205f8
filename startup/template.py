"""Rendering VPP's startup.conf from a template and the node's facts.

Owns: the documented placeholder keys (:data:`KEYS`), the node facts they
are computed from (CPUs, hugepages, plugins), and the check that a template
is well formed *before* anything on the node changes: an unknown
placeholder, a stray ``$`` or unbalanced braces raise :class:`TemplateError`
naming the line.
"""
from __future__ import annotations

import os
import string
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TemplateError

DEFAULT_TEMPLATE = Path(__file__).with_name("startup.conf.tmpl")

# The keys a template may use, and what each means.
KEYS: dict[str, str] = {
    "log_file": "VPP's log file",
    "cli_socket": "CLI socket path (vppctl -s)",
    "runtime_dir": "VPP runtime directory",
    "api_prefix": "shared-memory API segment prefix (unique per VPP)",
    "api_socket": "binary API socket path (the agent connects here)",
    "stats_socket": "stats segment socket path",
    "page_size": "'default-hugepage' when free hugepages exist, else '4k'",
    "main_heap_size": "main heap size, e.g. 512M",
    "buffers_per_numa": "packet buffers per NUMA node",
    "cpu_lines": "main-core / corelist-workers lines of the cpu section",
    "plugin_lines": "one 'plugin <name>.so { enable }' line per needed plugin",
    "main_core": "the CPU of VPP's main thread",
    "workers": "comma-separated worker CPUs, empty when none",
}

# Plugins bring-up and the agent need; everything else stays disabled.
# (VPP 26.06 loads crypto engines from vpp_crypto_engines/, outside this list.)
DEFAULT_PLUGINS = ("af_packet", "memif", "tap", "vxlan", "cnat", "acl", "ping", "wireguard",
                   "crypto_sw_scheduler")


class _Tmpl(string.Template):
    # Only ${name}: a bare $name is too easy to write by accident in a config.
    pattern = r"""
    \$(?:
      (?P<escaped>\$) |
      \{(?P<braced>[a-z_][a-z0-9_]*)\} |
      (?P<named>(?!)) |
      (?P<invalid>)
    )"""


@dataclass(frozen=True)
class NodeFacts:
    cpus: tuple[int, ...]
    free_hugepages: int
    hugepage_kb: int

    @staticmethod
    def gather() -> "NodeFacts":
        free, size = 0, 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                k, _, v = line.partition(":")
                if k == "HugePages_Free":
                    free = int(v.split()[0])
                elif k == "Hugepagesize":
                    size = int(v.split()[0])
        except OSError:
            pass
        return NodeFacts(tuple(sorted(os.sched_getaffinity(0))), free, size)


@dataclass(frozen=True)
class RenderInput:
    workdir: Path
    workers: int = 0
    main_heap_size: str = "512M"
    buffers_per_numa: int = 16384
    plugins: tuple[str, ...] = DEFAULT_PLUGINS
    extra: dict[str, str] = field(default_factory=dict)


def values(inp: RenderInput, facts: NodeFacts) -> dict[str, str]:
    """The placeholder values for ``inp`` on a node with ``facts``."""
    if not facts.cpus:
        raise TemplateError("no CPU is available to this process")
    if inp.workers < 0:
        raise TemplateError(f"workers must be >= 0, got {inp.workers}")
    main = facts.cpus[0]
    # Workers take the next CPUs; never more than there are besides the main core.
    workers = facts.cpus[1:1 + inp.workers]
    if len(workers) < inp.workers:
        raise TemplateError(
            f"{inp.workers} workers asked for but only {len(facts.cpus) - 1} CPUs besides the main core "
            f"(available: {','.join(map(str, facts.cpus))})")
    cpu_lines = [f"  main-core {main}"]
    if workers:
        cpu_lines.append(f"  corelist-workers {','.join(map(str, workers))}")
    # Buffers alone need about buffers * 2.5k; require at least that much in free hugepages.
    need_kb = inp.buffers_per_numa * 3
    huge = facts.free_hugepages * facts.hugepage_kb >= need_kb > 0
    w = inp.workdir
    out = {
        "log_file": str(w / "vpp.log"),
        "cli_socket": str(w / "cli.sock"),
        "runtime_dir": str(w),
        "api_prefix": f"vppagent{zlib.crc32(str(w).encode()):08x}",
        "api_socket": str(w / "api.sock"),
        "stats_socket": str(w / "stats.sock"),
        "page_size": "default-hugepage" if huge else "4k",
        "main_heap_size": inp.main_heap_size,
        "buffers_per_numa": str(inp.buffers_per_numa),
        "cpu_lines": "\n".join(cpu_lines),
        "plugin_lines": "\n".join(f"  plugin {p}_plugin.so {{ enable }}" for p in inp.plugins),
        "main_core": str(main),
        "workers": ",".join(map(str, workers)),
    }
    out.update(inp.extra)
    return out


def check(template: str, *, source: str = "template") -> None:
    """Raise TemplateError for unknown placeholders, stray ``$`` or unbalanced braces."""
    for m in _Tmpl.pattern.finditer(template):
        line = template.count("\n", 0, m.start()) + 1
        name = m.group("braced")
        if m.group("invalid") is not None:
            raise TemplateError(f"{source}:{line}: '$' not followed by ${{name}} or $$ "
                                f"(near {template[m.start():m.start() + 12]!r})")
        if name is not None and name not in KEYS:
            raise TemplateError(f"{source}:{line}: unknown placeholder ${{{name}}}; "
                                f"known keys: {', '.join(sorted(KEYS))}")
    depth = 0
    for n, line in enumerate(_Tmpl.pattern.sub("", template).splitlines(), 1):
        text = line.split("#", 1)[0]
        depth += text.count("{") - text.count("}")
        if depth < 0:
            raise TemplateError(f"{source}:{n}: '}}' without a matching '{{'")
    if depth:
        raise TemplateError(f"{source}: {depth} '{{' never closed")


def render(template: str, vals: dict[str, str], *, source: str = "template") -> str:
    check(template, source=source)
    try:
        return _Tmpl(template).substitute(vals)
    except KeyError as e:  # a documented key with no value
        raise TemplateError(f"{source}: no value for placeholder ${{{e.args[0]}}}") from None


def render_file(path: Path | None, inp: RenderInput, facts: NodeFacts | None = None) -> str:
    path = path or DEFAULT_TEMPLATE
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TemplateError(f"cannot read template {path}: {e.strerror}") from None
    return render(text, values(inp, facts or NodeFacts.gather()), source=str(path))
