"""PNG plots of a benchmark document (``psu-bench/1``), drawn with matplotlib's Agg backend.

Per device and variant:

``bench-<device>-<variant>-forward.png``, ``bench-<device>-<variant>-fwd-bwd.png``
    median time per call against ``T`` (log-log, ``T*N`` fixed), one line per implementation:
    backends solid, peers dashed, the copy floor dotted black.
``speedup-<device>-<variant>.png`` (when dense-torch ran)
    speed-up against the dense formulation, ``t(dense-torch) / t(impl)`` against ``T``, forward
    and forward+backward side by side (log-log; above 1 is faster than dense).

A line is labelled ``impl`` or ``impl (dtype)`` when the row ran in a dtype other than the
run's (the float64 reference). Points that were skipped are left out of the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PHASES = (("forward", "forward_ms", "ratio_dense_forward"), ("fwd+bwd", "fwd_bwd_ms", "ratio_dense_fwd_bwd"))
DENSE = "dense-torch"


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the plots need matplotlib (pip install matplotlib); or pass --no-plots") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label(row: dict) -> str:
    dt, want = row["dtype"], row.get("requested_dtype", row["dtype"])
    return row["impl"] if dt == want else f"{row['impl']} ({dt})"


def series(rows: Iterable[dict], key: str, transform=lambda v: v) -> dict[str, tuple[dict, list[tuple[int, float]]]]:  # type: ignore[no-untyped-def]
    """``label -> (first row, [(T, value), ...])`` for the rows with a value under ``key``."""
    out: dict[str, tuple[dict, list[tuple[int, float]]]] = {}
    for r in rows:
        v = r.get(key)
        if v is None:
            continue
        lab = label(r)
        out.setdefault(lab, (r, []))[1].append((r["T"], transform(v)))
    for _, pts in out.values():
        pts.sort()
    return out


# 16 distinguishable colours (tab10, then darker extras); one per line in a figure
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#000080",
)  # fmt: skip


def _style(row: dict, i: int) -> dict:
    if row["kind"] == "floor":  # black; dotted in the run's dtype, dash-dotted in another
        other = row["dtype"] != row.get("requested_dtype", row["dtype"])
        return {"color": "black", "linestyle": "-." if other else ":", "marker": None}
    markers = "osD^v<>phX*P8dH+"
    return {
        "linestyle": "-" if row["kind"] == "backend" else "--",
        "marker": markers[i % len(markers)],
        "color": COLOURS[i % len(COLOURS)],
    }


def _groups(doc: dict) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for r in doc["rows"]:
        seen[(r["device"], r["variant"])] = None
    return list(seen)


def _draw(ax, data: dict, order: list[str]) -> None:  # type: ignore[no-untyped-def]
    for lab in order:
        if lab not in data:
            continue
        row, pts = data[lab]
        st = _style(row, order.index(lab))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=lab, markersize=4, linewidth=1.3, **st)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    Ts = sorted({p[0] for _, pts in data.values() for p in pts})
    if Ts:  # label the T that were run, as plain numbers
        from matplotlib.ticker import NullLocator

        ax.set_xticks(Ts, [str(t) for t in Ts])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(True, which="both", alpha=0.3)


def write_plots(doc: dict, outdir: Path) -> list[Path]:
    """Write the PNGs for every (device, variant) of ``doc`` into ``outdir``; return their paths."""
    plt = _pyplot()
    outdir.mkdir(parents=True, exist_ok=True)
    c = doc["config"]
    total = c.get("total")
    paths: list[Path] = []
    for device, variant in _groups(doc):
        rows = [r for r in doc["rows"] if r["device"] == device and r["variant"] == variant]
        order = list(dict.fromkeys(label(r) for r in rows))
        for phase, key, _ in PHASES:
            data = series(rows, key)
            fig, ax = plt.subplots(figsize=(8.5, 5.0))
            _draw(ax, data, order)
            ax.set_xlabel("T (time steps)")
            ax.set_ylabel("median time per call (ms)")
            ax.set_title(f"{variant.upper()} {phase}, {device}, {c.get('dtype')}, T*N = {total}")
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
            fig.tight_layout()
            p = outdir / f"bench-{device}-{variant}-{phase.replace('+', '-')}.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
        ups = [series([r for r in rows if r["impl"] != DENSE], rkey, lambda v: 1.0 / v) for _, _, rkey in PHASES]
        if not any(ups):  # dense-torch not in this run: no speed-up to draw
            continue
        fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.8), sharey=True)
        for ax, (phase, _, _), data in zip(axes, PHASES, ups, strict=True):
            _draw(ax, data, order)
            ax.axhline(1.0, color="gray", linewidth=0.8)
            ax.set_xlabel("T (time steps)")
            ax.set_title(f"{phase}")
        axes[0].set_ylabel("speed-up vs dense-torch  (t_dense / t)")
        fig.suptitle(f"{variant.upper()}: speed-up against the dense formulation, {device}, {c.get('dtype')}")
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        p = outdir / f"speedup-{device}-{variant}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
