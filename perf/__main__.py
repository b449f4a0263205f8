"""``python -m perf``: throughput scenarios with a kernel baseline.

    python -m perf list
    python -m perf run SCENARIO... [--out perf/results] [--seconds N] [--repeat N] [--name throughput]
    python -m perf report RESULT.json  (the Markdown and PNGs again, from a result JSON)
    python -m perf render SCENARIO     (a kubectl scenario's manifests, to stdout)

SCENARIO is a name from perf/scenarios or a path to a YAML file. Real-VPP
environments need root and VPPAGENT_VPP_BIN; scenarios that cannot run here
are recorded as "not run" with the reason.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from perf.runner.scenario import ScenarioError, all_scenarios, find  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the scenario files")
    run = sub.add_parser("run", help="run scenarios (with their kernel baselines) and write results")
    run.add_argument("scenarios", nargs="+")
    run.add_argument("--out", default=str(REPO / "perf" / "results"))
    run.add_argument("--seconds", type=int, default=10, help="seconds per load run")
    run.add_argument("--repeat", type=int, default=1, help="runs per load; the median is reported")
    run.add_argument("--name", default="throughput", help="result file name (without extension)")
    report = sub.add_parser("report", help="write the Markdown and PNGs again from a result JSON")
    report.add_argument("json")
    render = sub.add_parser("render", help="a kubectl scenario's manifests")
    render.add_argument("scenario")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        if args.cmd == "list":
            for sc in all_scenarios():
                extra = f" (baseline {sc.baseline})" if sc.baseline else ""
                print(f"{sc.name:<28} {sc.env:<9} {sc.description}{extra}")
            return 0
        if args.cmd == "render":
            from perf.runner.envs.kubectl import render_yaml
            sys.stdout.write(render_yaml(find(args.scenario)))
            return 0
        if args.cmd == "report":
            import json

            from perf.runner import results
            src = Path(args.json)
            doc = json.loads(src.read_text())
            try:
                paths = results.write(doc, src.parent, src.stem)
            except results.PlotUnavailable as e:
                print(f"error: {e}", file=sys.stderr)
                return 3
            print("wrote " + ", ".join(str(p) for p in paths))
            return 0
        if not 1 <= args.seconds <= 600:
            ap.error("--seconds must be 1..600")
        if not 1 <= args.repeat <= 20:
            ap.error("--repeat must be 1..20")
        from perf.runner import results
        from perf.runner.run import run_session

        doc = run_session(args.scenarios, args.seconds, Path(args.out), args.repeat)
    except ScenarioError as e:
        print(f"scenario error: {e}", file=sys.stderr)
        return 2
    print(results.markdown(doc))
    try:
        paths = results.write(doc, Path(args.out), args.name)
    except results.PlotUnavailable as e:
        print(f"error: {e}; {args.out}/{args.name}.json and .md are written", file=sys.stderr)
        return 3
    print("wrote " + ", ".join(str(p) for p in paths))
    failed = [s["scenario"]["name"] for s in doc["scenarios"] if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
