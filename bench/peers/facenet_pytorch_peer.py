"""facenet-pytorch as its README shows it: MTCNN crops the face of each photo, InceptionResnetV1 embeds it.

The network has random weights (pretrained weights download at run time; the cost is the
same). Prints {"photos", "faces", "seconds"} as JSON; seconds include model set-up.

    python bench/peers/facenet_pytorch_peer.py PHOTO_FOLDER
"""

import json
import sys
import time
from pathlib import Path

start = time.perf_counter()
try:
    import torchvision  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).parent / "shim"))
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1
from PIL import Image

mtcnn = MTCNN()
resnet = InceptionResnetV1(pretrained=None).eval()
photos = sorted(p for p in Path(sys.argv[1]).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
faces = 0
embeddings = []
with torch.no_grad():
    for path in photos:
        image = Image.open(path).convert("RGB")
        crop = mtcnn(image)
        if crop is not None:
            embeddings.append(resnet(crop.unsqueeze(0)))
            faces += 1
print(json.dumps({"photos": len(photos), "faces": faces, "seconds": time.perf_counter() - start}))
