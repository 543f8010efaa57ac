"""Realistic photo folders for whole-command benchmarks, built from ../shared/data.

- LFW as shipped: 250 x 250 JPEGs, one face each.
- mixed: deepface-unit's own photos (0.2-14 MP) plus LFW photos resized to 0.3-5 MP.
- phone: 12 MP (4032 x 3024) JPEGs like a phone's, the face a 250 px LFW photo enlarged to
  about 1,500 px on a blurred background, stored sideways with an EXIF 'rotate' tag.
- a library tree of N photos: hard links to a pool of such files in person folders, so a
  20,000-photo tree costs seconds and little disk while every photo is decoded and detected.

Built sets are kept under --cache (default /tmp/fnet-bench) and reused.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from PIL import Image, ImageFilter

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
LFW = SHARED / "lfw/lfw-deepfunneled"
DEEPFACE = SHARED / "deepface-unit"
CACHE = Path(os.environ.get("FNET_BENCH_CACHE", "/tmp/fnet-bench"))


def lfw_paths(count: int, seed: int = 0) -> list[Path]:
    """`count` LFW photos spread over many people, the same ones every run."""
    paths = sorted(LFW.glob("*/*.jpg"))
    return sorted(random.Random(seed).sample(paths, count))


def _save_resized(source: Path, target: Path, megapixels: float) -> None:
    image = Image.open(source).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC).save(target, quality=90)


def _save_phone_photo(source: Path, target: Path) -> None:
    """A 4032 x 3024 landscape scene, stored as a 3024 x 4032 sideways JPEG with EXIF orientation 6 (as phones do)."""
    face = Image.open(source).convert("RGB")
    background = face.resize((4032, 3024), Image.BILINEAR).filter(ImageFilter.GaussianBlur(40))
    big = face.resize((1500, 1500), Image.BICUBIC)
    background.paste(big, ((4032 - 1500) // 2, (3024 - 1500) // 2))
    sideways = background.rotate(90, expand=True)
    exif = sideways.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    sideways.save(target, quality=90, exif=exif.tobytes())


def _build(name: str, make) -> Path:
    folder = CACHE / name
    if not (folder / ".complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        make(folder)
        (folder / ".complete").write_text("")
    return folder


def lfw_set(count: int) -> Path:
    def make(folder: Path) -> None:
        for path in lfw_paths(count):
            (folder / path.parent.name).mkdir(exist_ok=True)
            _link_or_copy(path, folder / path.parent.name / path.name)

    return _build(f"lfw-{count}", make)


def mixed_set(count: int) -> Path:
    """deepface-unit's photos, then LFW photos resized to 0.3-5 MP, `count` in all."""

    def make(folder: Path) -> None:
        own = sorted(DEEPFACE.glob("img*.jpg"))[:count]
        for path in own:
            _link_or_copy(path, folder / path.name)
        rng = random.Random(1)
        for path in lfw_paths(count - len(own), seed=1):
            _save_resized(path, folder / f"resized-{path.name}", rng.uniform(0.3, 5.0))

    return _build(f"mixed-{count}", make)


def phone_set(count: int) -> Path:
    def make(folder: Path) -> None:
        for path in lfw_paths(count, seed=2):
            _save_phone_photo(path, folder / f"phone-{path.stem}.jpg")

    return _build(f"phone-{count}", make)


def library_tree(count: int, small: float = 0.85, phone: float = 0.03) -> Path:
    """`count` photos in person folders: `small` LFW, `phone` 12 MP, the rest 0.3-5 MP (hard links to pools)."""
    pools = {"small": sorted(lfw_set(1000).rglob("*.jpg")), "mixed": sorted(mixed_set(150).glob("*.jpg")),
             "phone": sorted(phone_set(30).glob("*.jpg"))}

    def make(folder: Path) -> None:
        rng = random.Random(count)
        for number in range(count):
            draw = rng.random()
            kind = "small" if draw < small else "phone" if draw < small + phone else "mixed"
            source = pools[kind][number % len(pools[kind])]
            person = folder / f"person-{number // 20:05d}"
            person.mkdir(exist_ok=True)
            target = person / f"{kind}-{number:06d}{source.suffix}"
            _link_or_copy(source, target)

    return _build(f"library-{count}-{small}-{phone}", make)


def large_pool() -> Path:
    """Every photo library_tree draws besides LFW's, once: the 150 mixed and 30 phone photos. A small
    tree holds only some of them, so its peak memory can miss the heaviest photo a larger one has."""

    def make(folder: Path) -> None:
        for kind, pool in (("mixed", mixed_set(150)), ("phone", phone_set(30))):
            for source in sorted(pool.glob("*.jpg")):
                _link_or_copy(source, folder / f"{kind}-{source.name}")

    return _build("large-pool", make)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed there
        target.write_bytes(source.read_bytes())


def describe(folder: Path) -> str:
    """'N photos, X-Y MP (median Z)' from the files' headers."""
    sizes = sorted(Image.open(p).size[0] * Image.open(p).size[1] / 1e6 for p in folder.rglob("*.jpg"))
    return f"{len(sizes):,} photos, {sizes[0]:.2f}-{sizes[-1]:.1f} MP (median {sizes[len(sizes) // 2]:.2f})"
