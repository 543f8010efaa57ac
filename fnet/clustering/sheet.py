"""The contact sheet: one HTML page, a row of face thumbnails per cluster, largest first,
singletons last. Self-contained (thumbnails are data URIs) so it can be mailed or archived."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fnet.clustering.methods import cluster_members
from fnet.clustering.output import person_name
from fnet.io.ahead import load_ahead
from fnet.io.images import ImageError
from fnet.io.manifest import MANIFEST
from fnet.io.store import Store
from fnet.io.thumbnails import face_picture, thumbnail_uri

SHEET = "report.html"


def face_pictures(store: Store, rows: list[int], size: int, workers: int = 4) -> Iterator[tuple[int, np.ndarray | ImageError]]:
    """(row, the face as a size x size picture, or why it could not be read), in the order given."""
    root = Path(store.attrs.get("root", ""))
    crops = (root / MANIFEST).is_file()  # an aligned tree: the stored boxes are in the source photos
    paths, boxes = store.paths(), store.boxes()
    for row, image in load_ahead(rows, workers, lambda r: root / paths[r]):
        if isinstance(image, ImageError):
            yield row, image
        else:
            yield row, face_picture(image, (np.nan,) * 4 if crops else boxes[row], size)


def write_sheet(
    path: Path, store: Store, labels: np.ndarray, title: str, max_clusters: int = 200, per_row: int = 12, singletons: int = 60,
    names: dict[int, str] | None = None,
) -> Path:
    """The page, showing the `max_clusters` largest clusters (up to `per_row` faces each) and up to `singletons` faces seen once."""
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, np.int64)
    members = cluster_members(labels)
    groups = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 1][:max_clusters]
    alone = [int(m[0]) for m in members if len(m) == 1][:singletons]
    shown = {c: members[c][:per_row].tolist() for c in groups}
    wanted = [r for rows in shown.values() for r in rows] + alone
    uri = {row: (None if isinstance(p, ImageError) else thumbnail_uri(p, 96)) for row, p in face_pictures(store, wanted, 96)}
    paths = store.paths()

    def face(row: int) -> str:
        name = html.escape(paths[row])
        if uri[row] is None:
            return f'<div class="face missing" title="{name}">unreadable</div>'
        return f'<img class="face" src="{uri[row]}" title="{name}" alt="{name}">'

    def heading(cluster: int) -> str:  # a name given to the cluster, with its number; names are never markup
        name = (names or {}).get(int(cluster))
        return f"{html.escape(name)} <small>({person_name(cluster)})</small>" if name else person_name(cluster)

    sections = []
    for c in groups:
        more = sizes[c] - len(shown[c])
        sections.append(
            f'<section class="cluster" data-cluster="{c}" data-size="{sizes[c]}"><h2>{heading(c)} '
            f'<small>{sizes[c]} faces</small></h2><div class="row">{"".join(face(r) for r in shown[c])}'
            + (f'<span class="more">+{more} more</span>' if more > 0 else "")
            + "</div></section>"
        )
    count_single = int((sizes == 1).sum())
    if alone:
        sections.append(
            f'<section class="singletons" data-size="{count_single}"><h2>seen once <small>{count_single} faces</small></h2>'
            f'<div class="row wrap">{"".join(face(r) for r in alone)}</div></section>'
        )
    hidden = int((sizes > 1).sum()) - len(groups)
    note = f"<p>{hidden} smaller clusters not shown; see clusters.csv.</p>" if hidden > 0 else ""
    path.write_text(
        f"""<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} h2{{font-size:15px;margin:18px 0 6px;font-weight:600}}
small{{color:#777;font-weight:400}} .row{{display:flex;gap:4px;align-items:center}} .wrap{{flex-wrap:wrap}}
.face{{width:96px;height:96px;border-radius:4px;object-fit:cover}} .missing{{background:#eee;font-size:11px;display:flex;align-items:center;justify-content:center}}
.more{{color:#555;font-size:13px;padding-left:8px}}
</style></head><body><h1>{html.escape(title)}</h1><p>{len(labels)} faces in {len(sizes)} clusters
({int((sizes > 1).sum())} people seen more than once, {count_single} faces seen once).</p>{note}{''.join(sections)}</body></html>"""
    )
    return path
