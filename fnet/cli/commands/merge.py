"""`fnet merge`: join embedding stores (e.g. the shards of `fnet embed --shard`) into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.options import JsonOption, check_output
from fnet.cli.output import result


@command
def merge(
    stores: Annotated[list[Path], typer.Argument(help="Stores of the same model, e.g. the shards of `fnet embed --shard`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The joined store.")],
    json_output: JsonOption = False,
) -> None:
    """Join HDF5 embedding stores (shards) into one, without embedding anything again."""
    from fnet.io.store import merge_stores

    check_output(output, folder=False)
    rows = merge_stores(stores, output)
    result({"output": str(output), "rows": rows, "stores": len(stores)}, f"{output}: {rows} faces from {len(stores)} stores")
