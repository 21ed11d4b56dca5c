"""Loss curves from a run's ``log.jsonl`` as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def read_log(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_runs(
    runs: Sequence[str | Path], out: str | Path, skip: Sequence[str] = ("images_per_s", "loss_g", "loss_d")
) -> Path:
    """One panel per run folder (its stage), one line per unweighted loss term (weighted totals are
    left out: the x100 sync terms would flatten everything else); symmetric-log y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [Path(r) for r in runs]
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        rows = read_log(run / "log.jsonl")
        keys = sorted({k for r in rows for k in r if k != "step" and k not in skip})
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key)
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_title(run.name)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
