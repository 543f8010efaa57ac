"""Draw docs/img/alignment.jpg: detections on real photos, and their crop / similarity alignments.

    python bench/alignment_figure.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import fnet
from fnet.core.detector import FaceDetector
from fnet.crops import align_face, pick_faces

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
PHOTOS = ["deepface-unit/img11.jpg", "deepface-unit/couple.jpg", "lfw/lfw-deepfunneled/Serena_Williams/Serena_Williams_0001.jpg"]
TILE = 160


def main() -> None:
    detector = FaceDetector()
    font = ImageFont.load_default()
    rows = []
    for rel in PHOTOS:
        image = fnet.load_image(SHARED / rel)
        faces = detector.detect([image])[0]
        chosen = faces[pick_faces(faces, image.shape, "center")[0]]
        scale = TILE * 2 / max(image.shape[:2])
        shown = Image.fromarray(image).resize((int(image.shape[1] * scale), int(image.shape[0] * scale)))
        draw = ImageDraw.Draw(shown)
        for face in faces:
            colour = (0, 220, 0) if face is chosen else (255, 200, 0)
            draw.rectangle([v * scale for v in face.box], outline=colour, width=2)
            for x, y in face.landmarks:
                draw.ellipse([x * scale - 2, y * scale - 2, x * scale + 2, y * scale + 2], fill=(255, 0, 0))
        row = Image.new("RGB", (TILE * 2 + 2 * TILE + 40, TILE * 2 + 20), "white")
        row.paste(shown, (0, 20))
        for column, mode in enumerate(("crop", "similarity")):
            crop = Image.fromarray(align_face(image, chosen, mode))
            x = TILE * 2 + 20 + column * (TILE + 10)
            row.paste(crop, (x, 20 + TILE // 2))
            ImageDraw.Draw(row).text((x, 20 + TILE // 2 - 14), f"--mode {mode}", fill="black", font=font)
        ImageDraw.Draw(row).text((0, 4), f"{rel.split('/')[-1]}: {len(faces)} face(s), green = kept (--pick center)", fill="black", font=font)
        rows.append(row)
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * row.height))
    target = Path(__file__).resolve().parents[1] / "docs/img/alignment.jpg"
    sheet.save(target, quality=85, optimize=True)
    print(target)


if __name__ == "__main__":
    main()
