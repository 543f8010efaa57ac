"""`fnet serve`: the HTTP API (and its OpenAPI page) on one loaded model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.options import DeviceOption, GalleryOption, ModelOption, PrecisionOption, gallery_path
from fnet.cli.output import note
from fnet.errors import SettingsError


@command
def serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    gallery: GalleryOption = None,
    clusters: Annotated[Path | None, typer.Option(help="A `fnet cluster` folder: the UI offers its groups to name.")] = None,
    token: Annotated[str | None, typer.Option(envvar="FNET_TOKEN", help="Bearer token required on every route but /health ($FNET_TOKEN).")] = None,
    max_queue: Annotated[int, typer.Option(min=1, help="Requests in progress at once; more are answered 503 at once.")] = 32,
    max_upload_mb: Annotated[float, typer.Option(min=0.1, help="Largest photo accepted, in MB.")] = 20,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Serve faces, verify, recognise and people over HTTP (FastAPI; OpenAPI page at /docs).

    The model loads once; faces from concurrent requests share forward passes. Binds
    127.0.0.1 unless told otherwise, and then only with a token. Needs `pip install 'fnet[serve]'`.

    Example: fnet serve --gallery family.db;  curl -F image=@party.jpg localhost:8000/recognize
    """
    try:
        import uvicorn

        from fnet.serve.app import create_app
        from fnet.serve.service import ServeSettings, loopback
    except ImportError as err:
        raise SettingsError(f"fnet serve needs its extra: pip install 'fnet[serve]' ({err.name} is missing)") from None
    if not loopback(host) and not token:
        raise SettingsError(f"--host {host} exposes the API beyond this machine: set --token (or $FNET_TOKEN) too")
    settings = ServeSettings(
        gallery_path(gallery), model=model, device=device, precision=precision, token=token, clusters=clusters,
        max_upload_bytes=int(max_upload_mb * 2**20), max_queue=max_queue,
    )
    note(f"gallery {settings.gallery}; the UI on http://{host}:{port}/ and the API's OpenAPI page on /docs")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
