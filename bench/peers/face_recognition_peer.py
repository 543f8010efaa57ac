"""face_recognition as its README shows it: face_locations (HOG) then face_encodings, photo by photo.

Prints {"photos", "faces", "seconds"} as JSON; seconds include model set-up.

    python bench/peers/face_recognition_peer.py PHOTO_FOLDER
"""

import json
import sys
import time
from pathlib import Path

start = time.perf_counter()
import face_recognition

photos = sorted(p for p in Path(sys.argv[1]).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
faces = 0
for path in photos:
    image = face_recognition.load_image_file(path)
    locations = face_recognition.face_locations(image)
    faces += len(face_recognition.face_encodings(image, locations))
print(json.dumps({"photos": len(photos), "faces": faces, "seconds": time.perf_counter() - start}))
