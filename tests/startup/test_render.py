"""startup.conf rendering: sections from node facts, and malformed templates rejected."""
from __future__ import annotations

from pathlib import Path

import pytest

from startup import template
from startup.errors import TemplateError
from startup.template import NodeFacts, RenderInput

NO_HUGE = NodeFacts(cpus=(0, 1, 2, 3), free_hugepages=0, hugepage_kb=2048)
HUGE = NodeFacts(cpus=(2, 3), free_hugepages=1024, hugepage_kb=2048)


def _render(facts: NodeFacts, **kw) -> str:
    text = template.DEFAULT_TEMPLATE.read_text()
    return template.render(text, template.values(RenderInput(Path("/run/vpa"), **kw), facts))


def _section(conf: str, name: str) -> list[str]:
    lines = conf.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(name + " {"))
    if lines[start].rstrip().endswith("}"):
        return [lines[start]]
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return [l.strip() for l in lines[start + 1:end]]


def test_default_template_renders_sockets_cpu_buffers_plugins():
    conf = _render(NO_HUGE, workers=2)
    assert _section(conf, "cpu") == ["main-core 0", "corelist-workers 1,2"]
    assert "buffers-per-numa 16384" in _section(conf, "buffers")
    assert "page-size 4k" in _section(conf, "buffers")
    assert _section(conf, "socksvr") == ["socksvr { socket-name /run/vpa/api.sock }"]
    assert "socket-name /run/vpa/stats.sock" in _section(conf, "statseg")[0]
    plugins = _section(conf, "plugins")
    assert plugins[0] == "plugin default { disable }"
    assert "plugin af_packet_plugin.so { enable }" in plugins
    assert not [l for l in conf.splitlines() if "${" in l]


def test_no_workers_means_main_core_only():
    assert _section(_render(NO_HUGE), "cpu") == ["main-core 0"]


def test_free_hugepages_switch_page_size():
    conf = _render(HUGE, workers=1)
    assert "page-size default-hugepage" in _section(conf, "buffers")
    assert _section(conf, "cpu") == ["main-core 2", "corelist-workers 3"]


def test_more_workers_than_cpus_is_an_error():
    with pytest.raises(TemplateError, match="3 workers asked for but only 1 CPUs"):
        _render(HUGE, workers=3)


@pytest.mark.parametrize("text,msg", [
    ("unix {\n  log ${no_such_key}\n}\n", r"tmpl:2: unknown placeholder \$\{no_such_key\}"),
    ("unix { log $log_file }\n", r"tmpl:1: '\$' not followed by"),
    ("unix {\n  log ${log_file}\n", r"1 '\{' never closed"),
    ("unix { }\n}\n", r"tmpl:2: '\}' without a matching"),
])
def test_malformed_template_names_the_line(text, msg):
    with pytest.raises(TemplateError, match=msg):
        template.render(text, template.values(RenderInput(Path("/x")), NO_HUGE), source="tmpl")


def test_literal_dollar_is_doubled():
    out = template.render("unix { log /x/$$HOME }\n", {}, source="t")
    assert out == "unix { log /x/$HOME }\n"


def test_missing_template_file_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="cannot read template"):
        template.render_file(tmp_path / "nope.tmpl", RenderInput(tmp_path), NO_HUGE)


def test_gathered_facts_are_this_machine():
    f = NodeFacts.gather()
    assert f.cpus and all(c >= 0 for c in f.cpus)
