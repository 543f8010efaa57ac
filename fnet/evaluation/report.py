"""Pictures of an evaluation: the ROC curve as PNG, and an HTML page with the worst mistakes."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from fnet.evaluation.metrics import roc_curve
from fnet.io.thumbnails import thumbnail_uri


def roc_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, far_target: float = 1e-3) -> Path:
    """ROC curves, {label: (distances, same)}, with a log-scale FAR axis as in face verification papers."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, (distances, same) in curves.items():
        far, val, _ = roc_curve(distances, same)
        floor = 0.5 / max((~np.asarray(same, bool)).sum(), 1)  # FAR 0 drawn half a pair left of the first false accept
        axis.step(np.maximum(far, floor), val, where="post", label=label)
    axis.axvline(far_target, color="grey", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("false accept rate (FAR)")
    axis.set_ylabel("validation rate (VAL = true accepts)")
    axis.set_ylim(0.5, 1.0)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def html_report(title: str, metrics: dict, mistakes: dict[str, list[tuple[str, str, float, np.ndarray, np.ndarray]]], roc_file: str, path: Path) -> Path:
    """A self-contained page: metrics, the ROC curve, and each kind of mistake as pairs of thumbnails."""
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items()
    )
    sections = []
    for heading, pairs in mistakes.items():
        cards = "".join(
            f'<figure><img src="{thumbnail_uri(a)}" alt="{html.escape(pa)}"><img src="{thumbnail_uri(b)}" alt="{html.escape(pb)}">'
            f"<figcaption>d = {d:.3f}<br>{html.escape(Path(pa).name)}<br>{html.escape(Path(pb).name)}</figcaption></figure>"
            for pa, pb, d, a, b in pairs
        ) or "<p>none</p>"
        sections.append(f"<h2>{html.escape(heading)}</h2><div class=grid>{cards}</div>")
    path.write_text(
        f"""<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
th{{text-align:left;padding:2px 12px 2px 0;font-weight:500;color:#555}} td{{font-family:monospace}}
.grid{{display:flex;flex-wrap:wrap;gap:12px}} figure{{margin:0;padding:6px;border:1px solid #ddd;border-radius:6px}}
figure img{{width:112px;height:112px}} figcaption{{font-size:12px;color:#555;max-width:230px;overflow-wrap:anywhere}}
</style></head><body><h1>{html.escape(title)}</h1><table>{rows}</table>
<h2>ROC</h2><img src="{html.escape(roc_file)}" alt="ROC curve" width=600>{''.join(sections)}</body></html>"""
    )
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)
