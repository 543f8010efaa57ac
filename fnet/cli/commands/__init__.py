"""One module per command; importing this package registers them all on fnet.cli.app.app, in help order."""

import importlib

COMMANDS = (
    "models", "demo", "faces", "verify", "recognize", "align", "embed", "merge", "index", "search", "cluster", "evaluate", "train",
    "people", "people_manage", "serve",
)

for _name in COMMANDS:
    importlib.import_module(f"fnet.cli.commands.{_name}")
