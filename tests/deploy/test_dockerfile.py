"""The Dockerfile's structure (no Docker engine runs here): stages, pinned versions, what the
runtime stage keeps out, entry points, and that every COPY source exists and is not ignored."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VPP_VERSION = "26.06-release"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile: continuations joined, comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        elif not stages:
            assert op == "ARG", f"only ARG may precede FROM, got {op}"
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        else:
            stages[-1].instructions.append((op, rest.strip()))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse((REPO / "Dockerfile").read_text())


def expand(s: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), s)


def test_two_stages_on_one_pinned_base(dockerfile) -> None:
    args, stages = dockerfile
    assert [s.name for s in stages] == ["build", "runtime"]
    bases = {expand(s.base, args) for s in stages}
    assert len(bases) == 1, "build and runtime share a base (the venv's python must match)"
    (base,) = bases
    assert ":" in base and not base.endswith(":latest"), f"base image {base} is not pinned"


def test_vpp_is_pinned_to_2606_everywhere(dockerfile) -> None:
    args, stages = dockerfile
    assert args["VPP_VERSION"] == VPP_VERSION
    for stage in stages:
        assert "VPP_VERSION" in [a.split("=")[0] for a in stage.all("ARG")], f"{stage.name} must re-declare ARG VPP_VERSION"
        for run in stage.all("RUN"):
            for pkg in re.findall(r"\b((?:lib)?vpp[\w-]*)=(\S+)", run):
                assert pkg[1] == "${VPP_VERSION}", pkg
            installs = re.findall(r"apt-get install[^&]*", run)
            for inst in installs:
                for word in inst.split():
                    if re.fullmatch(r"(lib)?vpp[\w-]*", word):
                        pytest.fail(f"{stage.name}: {word} installed without a pinned version")
    build_runs = " ".join(stages[0].all("RUN"))
    assert "vpp-dev=${VPP_VERSION}" in build_runs
    assert "packagecloud.io/fdio/" in build_runs and "signed-by=" in build_runs


def test_build_stage_builds_the_plugins_with_cmake(dockerfile) -> None:
    _, stages = dockerfile
    runs = " ".join(stages[0].all("RUN"))
    m = re.search(r"cmake -S (\S+) -B (\S+)", runs)
    assert m, "cmake configure of the plugins"
    src = m[1]
    copied = {shlex.split(c)[-1].rstrip("/"): shlex.split(c)[0] for c in stages[0].all("COPY")}
    assert src.rstrip("/") in copied, f"cmake source {src} is not a COPY destination"
    local = REPO / copied[src.rstrip("/")]
    assert (local / "CMakeLists.txt").is_file(), \
        f"{local.relative_to(REPO)}/CMakeLists.txt missing: the plugins cannot be configured"
    assert "cmake --install" in runs


def test_runtime_stage_is_small(dockerfile) -> None:
    _, stages = dockerfile
    runtime = stages[1]
    runs = " ".join(runtime.all("RUN"))
    for tool in ("gcc", "g++", "cmake", "ninja-build", "-dev", "python3-venv", "build-essential"):
        assert tool not in runs, f"runtime stage installs {tool}"
    assert "--no-install-recommends" in runs and "rm -rf /var/lib/apt/lists" in runs
    froms = [c for c in runtime.all("COPY") if c.startswith("--from=")]
    assert {c.split()[0] for c in froms} == {"--from=build"}
    assert any("/opt/vppagent" in c for c in froms) and any("vpp_plugins" in c for c in froms)
    assert not [c for c in runtime.all("COPY") if not c.startswith("--from=")], \
        "the runtime stage takes nothing from the build context"


def test_entrypoints(dockerfile) -> None:
    _, stages = dockerfile
    runtime = stages[1]
    (entry,) = runtime.all("ENTRYPOINT")
    assert json.loads(entry) == ["/opt/vppagent/bin/vppagent"]
    assert json.loads(runtime.all("CMD")[0]) == ["run"]
    # the console scripts the DaemonSet runs are the project's own
    pyproject = (REPO / "pyproject.toml").read_text()
    for script in ("vppagent = ", "vppagent-cni = "):
        assert script in pyproject
    assert (REPO / "startup" / "__main__.py").is_file(), "python -m startup"


def _ignored(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for p in patterns:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.rstrip("/")
        hit = fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*") or \
            (pat.startswith("**/") and (fnmatch.fnmatch(rel, pat[3:]) or fnmatch.fnmatch(rel, "*/" + pat[3:])))
        if hit:
            ignored = not neg
    return ignored


def test_every_copy_source_exists_and_is_not_dockerignored(dockerfile) -> None:
    _, stages = dockerfile
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    seen = 0
    for stage in stages:
        for c in stage.all("COPY"):
            words = shlex.split(c)
            if words[0].startswith("--from="):
                continue
            for src in [w for w in words[:-1] if not w.startswith("--")]:
                seen += 1
                assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
                assert not _ignored(src.rstrip("/"), patterns), f"COPY {src} is excluded by .dockerignore"
    assert seen >= 5
