"""The HTTP API (FastAPI): faces, verify, recognise, people; JSON in and out, the Python API's result objects.

Safe by default: `fnet serve` binds 127.0.0.1 and needs --token for any other address (bearer
auth on every route but /health); uploads are capped in bytes and in pixels (read from the
header: a decompression bomb is refused before decoding); at most `max_queue` requests are in
progress, more are answered 503 at once instead of piling up; client file names are only
ever labels, never paths; no CORS.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from fnet import __version__
from fnet.errors import FnetError
from fnet.io.images import ImageError, decode_image
from fnet.io.lock import LockedError
from fnet.people.gallery import GalleryError
from fnet.serve.people_routes import people_router
from fnet.serve.service import ServeSettings, Service
from fnet.serve.ui import ui_router


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The application; `service` (the loaded pipeline) is made from the settings when not given."""
    owned = service is None  # a service handed in outlives this app (tests run several apps on one model)
    if service is None:
        from fnet.pipeline import load_pipeline

        service = Service(settings, load_pipeline(settings.model, device=settings.device, precision=settings.precision).preload())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        if owned:
            service.close()

    app = FastAPI(title="fnet", version=__version__, lifespan=lifespan, description="Face recognition: faces, verify, recognise, people.")
    slots = threading.BoundedSemaphore(settings.max_queue)

    @contextmanager
    def slot() -> Iterator[None]:
        if not slots.acquire(blocking=False):
            raise HTTPException(503, "busy: too many requests in progress; retry shortly", headers={"Retry-After": "1"})
        try:
            yield
        finally:
            slots.release()

    def authorised(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            raise HTTPException(401, "a bearer token is required (Authorization: Bearer TOKEN)", headers={"WWW-Authenticate": "Bearer"})

    async def photo(upload: UploadFile, field: str):
        """The upload's bytes decoded (off the event loop), or a 4xx naming the field and the reason."""
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(413, f"{field}: larger than {settings.max_upload_bytes:,} bytes")
        name = f"{field} ({upload.filename or 'upload'})"  # a label only: never a path
        return await _in_thread(decode_image, data, name, settings.max_pixels)

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        """A body announced larger than two photos' limit is refused before it is read."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > 2 * settings.max_upload_bytes + 65536:
            return JSONResponse({"error": f"request larger than {2 * settings.max_upload_bytes:,} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(FnetError)
    async def user_error(_: Request, err: FnetError) -> JSONResponse:
        status = 409 if isinstance(err, LockedError) else 413 if isinstance(err, ImageError) and "too large" in str(err) else 400
        if isinstance(err, GalleryError) and "no person named" in str(err):
            status = 404
        return JSONResponse({"error": str(err), "reason": err.reason or str(err)}, status_code=status)

    guarded = [Depends(authorised)]

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "model": service.pipeline.info.name, "forward_passes": service.batcher.batches}

    @app.post("/faces", dependencies=guarded)
    async def faces(image: Annotated[UploadFile, File()], embeddings: Annotated[bool, Form()] = False) -> dict:
        with slot():
            found = await _in_thread(service.faces, await photo(image, "image"))
        return {"faces": [f.to_dict(embedding=embeddings) for f in found]}

    @app.post("/verify", dependencies=guarded)
    async def verify(a: Annotated[UploadFile, File()], b: Annotated[UploadFile, File()], threshold: Annotated[float | None, Form()] = None) -> dict:
        with slot():
            verdict = await _in_thread(service.verify, await photo(a, "a"), await photo(b, "b"), threshold)
        return verdict.to_dict()

    @app.post("/recognize", dependencies=guarded)
    async def recognize(image: Annotated[UploadFile, File()]) -> dict:
        with slot():
            found, chosen = await _in_thread(service.recognize, await photo(image, "image"))
        return {"threshold": chosen.to_dict(), "faces": [f.to_dict() for f in found]}

    app.include_router(people_router(service, slot, photo, _in_thread), dependencies=guarded)
    app.include_router(ui_router())
    app.state.service = service
    return app


async def _in_thread(function, *args):
    """Run the work off the event loop (detection and decoding hold the GIL only in part)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)
