"""Turn benchmark runs into figures: medians with min/max, tailnet / Go ratios, a table, a chart.

``python -m benchmarks.report results/<date>.json`` prints the tables of a
saved run again (and ``--chart`` redraws its chart).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from ._spec import METRICS, Metric, Target

#: The systems as the report names them, in this order.
LABELS = {
    "go": "Go tsnet",  # as upstream ships it: GRO and GSO on (runs from 2026-12 on)
    "sync": "tailnet sync",
    "asyncio": "tailnet asyncio",
    "trio": "tailnet trio",
    # asyncio with uvloop's event loop (anyio's use_uvloop): a column of its
    # own, for what the event loop costs; the library's default is asyncio's.
    "uvloop": "tailnet asyncio + uvloop",
    # Runs before GRO was back in tailnet: their "go" was built without GRO,
    # and this column was Go tsnet as shipped.
    "go-gro": "Go tsnet + GRO",
    "loopback": "loopback (Go)",
    "loopback-py": "loopback (Python)",
}
#: The systems compared with Go tsnet.
TAILNET = ("sync", "asyncio", "trio", "uvloop")


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Figures as system -> metric -> {median, min, max, n} over the successful runs."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for key, value in run.get("figures", {}).items():
            if isinstance(value, int | float):
                values.setdefault(run["system"], {}).setdefault(key, []).append(float(value))
    return {
        system: {
            key: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
            for key, v in metrics.items()
        }
        for system, metrics in values.items()
    }


def compare(summary: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Comparison as tailnet system -> metric -> {ratio (to Go), over_mib (MiB over Go), target, met}."""
    go = summary.get("go", {})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for system in TAILNET:
        for m in METRICS:
            ours, theirs = summary.get(system, {}).get(m.key), go.get(m.key)
            if ours is None or theirs is None:
                continue
            target = m.targets.get(system)
            entry: dict[str, Any] = {"target": None, "met": None}
            if theirs["median"]:
                entry["ratio"] = ours["median"] / theirs["median"]
            if m.unit == "MiB":
                entry["over_mib"] = ours["median"] - theirs["median"]
                entry["mib"] = ours["median"]
            if target is not None:
                entry["target"] = {"value": target.value, "kind": target.kind}
                entry["met"] = _met(m, target, entry)
            out.setdefault(system, {})[m.key] = entry
    return out


def _met(m: Metric, target: Target, entry: dict[str, Any]) -> bool | None:
    if target.kind == "over_go_mib":
        return bool(entry["over_mib"] <= target.value)
    if target.kind == "mib":
        return bool(entry["mib"] <= target.value)
    if "ratio" not in entry:
        return None
    ratio = entry["ratio"]
    return bool(ratio >= target.value if m.better == "higher" else ratio <= target.value)


def _number(value: float, m: Metric) -> str:
    if m.key == "udp_loss":
        return f"{value * 100:.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _bound_text(m: Metric, target: Target) -> str:
    if target.kind == "over_go_mib":
        return f"≤ Go + {target.value:g} MiB"
    if target.kind == "mib":
        return f"≤ {target.value:g} MiB"
    return f"{'≥' if m.better == 'higher' else '≤'} {target.value:.2f}"


def _target_text(m: Metric, systems: list[str]) -> str:
    """One bound if every shown API has the same, else each API's."""
    bounds = {s: _bound_text(m, m.targets[s]) for s in systems if s in m.targets}
    if not bounds:
        return ""
    if len(set(bounds.values())) == 1 and len(bounds) == len(systems):
        return next(iter(bounds.values()))
    return ", ".join(f"{s} {text}" for s, text in bounds.items())


def figures_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: each metric's median [min-max] for each system."""
    systems = [s for s in LABELS if s in summary]
    lines = [
        "| workload | unit | " + " | ".join(LABELS[s] for s in systems) + " |",
        "| --- | --- |" + " ---: |" * len(systems),
    ]
    for m in METRICS:
        cells = []
        for s in systems:
            f = summary[s].get(m.key)
            cells.append(
                "-"
                if f is None
                else f"{_number(f['median'], m)} [{_number(f['min'], m)}-{_number(f['max'], m)}]"
            )
        if any(c != "-" for c in cells):
            lines.append(f"| {m.title} | {m.unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios_table(comparison: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown: tailnet / Go tsnet per metric and system, with the target and whether it is met."""
    systems = [s for s in TAILNET if s in comparison]
    lines = [
        "| workload | " + " | ".join(f"{LABELS[s]} / Go" for s in systems) + " | target |",
        "| --- |" + " ---: |" * len(systems) + " --- |",
    ]
    for m in METRICS:
        cells = []
        for s in systems:
            e = comparison[s].get(m.key)
            if e is None or ("ratio" not in e and "over_mib" not in e):
                cells.append("-")
                continue
            if (e["target"] or {}).get("kind") == "mib":
                text = f"{e['mib']:.1f} MiB"
            elif "over_mib" in e:
                text = f"{e['over_mib']:+.1f} MiB"
            else:
                text = f"{e['ratio']:.2f}"
            mark = {True: " ✓", False: " ✗", None: ""}[e["met"]]
            cells.append(text + mark)
        if any(c != "-" for c in cells):
            lines.append(f"| {m.title} | " + " | ".join(cells) + f" | {_target_text(m, systems)} |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The whole report of a run, as Markdown."""
    meta = result["machine"]
    load = result.get("load", {})
    notes = sorted({n for run in result["runs"] for n in run.get("figures", {}).get("notes", [])})
    failures = [f"{r['system']} (repeat {r['repeat']}): {r['error']}" for r in result["runs"] if "error" in r]
    parts = [
        f"Run {result['date']} ({result['mode']}, {result['repeat']} repeats; "
        f"figures are median [min-max]; {result['duration_s']:.0f} s).",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gib']:.1f} GiB, "
        f"Linux {meta['kernel']}, Python {meta['python']}, {meta['go']}. "
        f"Load average (1 min) during the run: median {load.get('median', 0):.1f}, "
        f"max {load.get('max', 0):.1f}.",
        "",
        ratios_table(compare(result["summary"])),  # against today's targets, for old runs too
        "",
        figures_table(result["summary"]),
    ]
    if notes:
        parts += ["", "Notes: " + "; ".join(notes) + "."]
    if failures:
        parts += ["", "Failed runs (left out of the figures): " + "; ".join(failures)]
    return "\n".join(parts)


def chart(result: dict[str, Any], path: Path) -> None:
    """A PNG: one panel per metric, a bar per system (median, min-max whiskers), ratios to Go."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    summary = result["summary"]
    systems = [s for s in LABELS if s in summary]
    metrics = [m for m in METRICS if any(m.key in summary[s] for s in systems)]
    cols = 4
    rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, m in zip(axes.flat, metrics, strict=False):
        _panel(ax, m, summary, systems, colors)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    handles = [Patch(color=colors(i)) for i in range(len(systems))]
    fig.legend(handles, [LABELS[s] for s in systems], loc="lower center", ncol=len(systems), frameon=False)
    load = result.get("load", {})
    fig.suptitle(
        f"tailnet vs Go tsnet, {result['date']} ({result['mode']}, {result['repeat']} repeats, "
        f"{result['machine']['cores']} cores, load avg ~{load.get('median', 0):.1f}); "
        "bars: median, whiskers: min-max, labels: ratio to Go tsnet",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _panel(ax: Any, m: Metric, summary: dict[str, Any], systems: list[str], colors: Any) -> None:
    scale = 100.0 if m.key == "udp_loss" else 1.0
    go = summary.get("go", {}).get(m.key)
    for i, s in enumerate(systems):
        f = summary[s].get(m.key)
        if f is None:
            continue
        mid = f["median"] * scale
        err = [[mid - f["min"] * scale], [f["max"] * scale - mid]]
        ax.bar(i, mid, color=colors(i), yerr=err, capsize=3)
        if s in TAILNET and go and go["median"]:
            ax.annotate(
                f"{f['median'] / go['median']:.2f}x",
                (i, f["max"] * scale),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
    tops = [summary[s][m.key]["max"] for s in systems if m.key in summary[s]]
    bottoms = [summary[s][m.key]["min"] for s in systems if m.key in summary[s]]
    log = m.key != "udp_loss" and min(bottoms) > 0 and max(tops) / min(bottoms) > 20
    if log:  # loopback dwarfs the rest
        ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * (2.5 if log else 1.12))  # room for the ratio labels
    ax.set_title(f"{m.title} ({m.unit}, {m.better} is better)", fontsize=9)
    ax.set_xticks([])
    ax.tick_params(labelsize=8)


def main(argv: list[str] | None = None) -> None:
    """Print the report of a saved results file."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--chart", type=Path, help="also draw the chart to this PNG")
    args = parser.parse_args(argv)
    result = json.loads(args.results.read_text())
    print(markdown(result))
    if args.chart:
        chart(result, args.chart)


if __name__ == "__main__":
    main()
