"""The people routes: the gallery's people with their faces' thumbnails, enrolment, rename / merge / move /
remove, and a `fnet cluster` folder's groups to name (with --clusters)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import Response

from fnet.clustering.output import JSON, cluster_names, person_name
from fnet.io.images import ImageError
from fnet.io.thumbnails import thumbnail_uri
from fnet.people.gallery import Gallery


def people_router(service, slot, photo, in_thread) -> APIRouter:
    router, settings = APIRouter(), service.settings

    def gallery(create: bool = False):
        info = service.pipeline.info
        return Gallery.open(settings.gallery, info.name, info.embedding_dim, create=create)

    @router.get("/people")
    def people() -> dict:
        if not settings.gallery.exists():
            return {"people": []}
        with gallery() as g:
            faces: dict[str, list[int]] = {}
            for face in g.faces():
                faces.setdefault(face["person"], []).append(face["id"])
            return {"people": [{**vars(p), "face_ids": faces.get(p.name, [])} for p in g.people()]}

    @router.get("/faces/{face_id}/thumbnail", response_class=Response)
    def thumbnail(face_id: int) -> Response:
        with gallery() as g:
            found = g.thumbnails([face_id])
        if face_id not in found:
            raise HTTPException(404, f"face {face_id}: no thumbnail")
        return Response(found[face_id], media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @router.post("/people/{name}/faces", status_code=201)
    async def enrol(name: str, image: Annotated[UploadFile, File()]) -> dict:
        with slot():
            face = await in_thread(service.enrol, name, await photo(image, "image"), image.filename or "upload")
        return {"person": name, "face": face.face, "box": [round(v, 2) for v in face.box]}

    @router.patch("/people/{name}")
    def change(name: str, body: dict) -> dict:
        """{"name": NEW} renames; {"merge_into": OTHER} moves every face to OTHER and drops NAME."""
        if not isinstance(body.get("merge_into", body.get("name")), str):
            raise HTTPException(400, 'send {"name": NEW} to rename, or {"merge_into": OTHER} to merge')
        with gallery() as g, g.writing():
            if "merge_into" in body:
                return {"merged": name, "into": body["merge_into"], "faces": g.merge(name, body["merge_into"])}
            g.rename(name, body["name"])
        return {"renamed": name, "to": body["name"]}

    @router.post("/faces/move")
    def move(body: dict) -> dict:
        """{"faces": [ids], "to": NAME}: faces enrolled under the wrong person go to NAME (created if new)."""
        faces, to = body.get("faces"), body.get("to")
        if not isinstance(to, str) or not isinstance(faces, list) or not faces or not all(isinstance(f, int) for f in faces):
            raise HTTPException(400, 'send {"faces": [face ids], "to": NAME}')
        with gallery() as g, g.writing():
            return {"moved": g.move_faces(faces, to), "to": to}

    @router.delete("/people/{name}")
    def remove(name: str) -> dict:
        with gallery() as g, g.writing():
            return {"removed": name, "faces": g.remove(name)}

    @router.get("/clusters")
    def clusters(faces: int = 8) -> dict:
        """The cluster folder's groups of two or more faces, largest first, each with a few face thumbnails."""
        if settings.clusters is None:
            return {"clusters": []}
        from fnet.clustering.sheet import face_pictures
        from fnet.io.stores import open_store

        meta = json.loads((settings.clusters / JSON).read_text())
        names = cluster_names(meta)
        groups = sorted((c for c, rows in enumerate(meta["members"]) if len(rows) > 1), key=lambda c: -len(meta["members"][c]))
        with open_store(meta["store"]) as store:
            wanted = [row for c in groups for row in meta["members"][c][:faces]]
            pictures = {row: thumbnail_uri(p, 96) for row, p in face_pictures(store, wanted, 96) if not isinstance(p, ImageError)}
        return {"clusters": [
            {"number": c + 1, "person": person_name(c), "name": names.get(c), "size": len(meta["members"][c]),
             "thumbnails": [pictures[r] for r in meta["members"][c][:faces] if r in pictures]}
            for c in groups
        ]}

    @router.post("/clusters/{number}/name")
    def name_cluster(number: int, body: dict) -> dict:
        """{"name": NAME}: the cluster person-NUMBER is NAME; its faces are enrolled, the name kept with the clusters."""
        from fnet.pipeline.people import enrol_clusters

        if settings.clusters is None:
            raise HTTPException(404, "no cluster folder: start fnet serve with --clusters DIR")
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise HTTPException(400, 'send {"name": NAME}')
        with slot():
            report = enrol_clusters(settings.gallery, settings.clusters, {number - 1: str(body["name"]).strip()})
        return {"cluster": number, "name": body["name"], "enrolled": report.faces}

    return router
