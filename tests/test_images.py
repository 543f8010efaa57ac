"""The image loader over a corpus of odd and broken files that the tests generate."""

from __future__ import annotations

import io
import struct
import sys
import zlib

import numpy as np
import pytest
from conftest import DEEPFACE, LFW
from PIL import Image

from fnet.io.ahead import decode_cost
from fnet.io.images import ImageError, Reduced, decode_jpeg, load_image, load_reduced, whole_photo


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photo (a face from the deepface-unit set), shrunk to keep tests fast."""
    path = DEEPFACE / "img1.jpg"
    if not path.is_file():
        pytest.skip(f"shared data not found at {DEEPFACE}")
    image = Image.open(path).convert("RGB")
    image.thumbnail((200, 200))
    return image


def save(image: Image.Image, path, fmt: str, **kwargs):
    image.save(path, fmt, **kwargs)
    return path


# --- files that decode, in every colour layout ---------------------------------------


def test_plain_rgb_jpeg(tmp_path, photo):
    out = load_image(save(photo, tmp_path / "a.jpg", "JPEG", quality=95))
    assert out.shape == (photo.height, photo.width, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.asarray(photo, int)).mean() < 3


@pytest.mark.parametrize("mode", ["L", "1", "P", "I;16", "F", "CMYK", "LA", "RGBA", "YCbCr"])
def test_every_colour_mode_becomes_rgb(tmp_path, photo, mode):
    if mode == "I;16":
        gray = np.asarray(photo.convert("L"), np.uint16) * 257  # full 16-bit range
        image, fmt, suffix = Image.fromarray(gray), "PNG", "png"
    elif mode == "F":
        image, fmt, suffix = Image.fromarray(np.asarray(photo.convert("L"), np.float32) / 255), "TIFF", "tif"
    elif mode == "CMYK":
        image, fmt, suffix = photo.convert("CMYK"), "JPEG", "jpg"
    elif mode == "YCbCr":
        image, fmt, suffix = photo.convert("YCbCr"), "JPEG", "jpg"
    else:
        image, fmt, suffix = photo.convert(mode), ("PNG" if mode != "1" else "BMP"), ("png" if mode != "1" else "bmp")
    out = load_image(save(image, tmp_path / f"x.{suffix}", fmt))
    assert out.shape == (photo.height, photo.width, 3) and out.dtype == np.uint8
    if mode in ("L", "I;16", "F"):
        # 16-bit and float images are rescaled, not clipped to white
        gray = np.asarray(photo.convert("L"), float)
        assert np.abs(out[..., 0] - gray).mean() < 4 and out.std() > 20


def test_a_float_image_with_inf_or_nan_pixels_keeps_its_picture(tmp_path, photo):
    """One Inf pixel used to stretch the range so that every other pixel turned black."""
    gray = np.asarray(photo.convert("L"), np.float32) / 255
    hostile = gray.copy()
    hostile[0, 0], hostile[0, 1], hostile[1, 0] = np.inf, -np.inf, np.nan
    out = load_image(save(Image.fromarray(hostile), tmp_path / "x.tif", "TIFF"))
    assert np.abs(out[2:, 2:, 0] - gray[2:, 2:] * 255).mean() < 4 and out.std() > 20
    assert out[0, 0, 0] == out[2:, 2:, 0].max()  # +Inf: the brightest


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "t.png", "PNG"))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 9]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    # A 40 x 20 landscape whose left half is red; EXIF says "rotate 90 CW to display" (6).
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    out = load_image(save(image, tmp_path / "rot.jpg", "JPEG", exif=exif.tobytes(), quality=100))
    assert out.shape == (40, 20, 3)  # now portrait
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60  # red half on top after the 90 CW turn


def test_multi_frame_gif_gives_first_frame(tmp_path, photo):
    frames = [photo.convert("P"), photo.rotate(90).convert("P")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_image(path).shape == (photo.height, photo.width, 3)


# --- files that cannot be used: one clear reason each, naming the file ------------------


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header declares a huge image (a decompression bomb's signature)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def jpeg_bytes(photo: Image.Image) -> bytes:
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("empty.jpg", lambda p: b"", "empty file"),
        ("notes.jpg", lambda p: b"these are not pixels\n" * 50, "not an image"),
        ("page.png", lambda p: b"<html><body>404</body></html>", "not an image"),
        ("half.jpg", lambda p: jpeg_bytes(p)[: len(jpeg_bytes(p)) // 2], "truncated"),
        ("header-only.png", lambda p: png_claiming_size(64, 64)[:40], "truncated|corrupt"),
        ("garbled.jpg", lambda p: jpeg_bytes(p)[:200] + bytes(range(256)) * 40, "truncated|corrupt"),
        ("bomb.png", lambda p: png_claiming_size(50_000, 50_000), "too large"),
    ],
)
def test_broken_files_raise_one_clear_error(tmp_path, photo, name, make, reason):
    path = tmp_path / name
    path.write_bytes(make(photo))
    with pytest.raises(ImageError, match=reason) as caught:
        load_image(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    assert caught.value.path == str(path)


def test_pixel_limit_is_configurable(tmp_path, photo):
    path = save(photo, tmp_path / "a.png", "PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image(path, max_pixels=1000)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_decode_ahead_holds_a_bounded_window_for_a_slow_consumer(tmp_path, photo):
    """However many photos and however slow the detector, at most `ahead` are decoded before they are taken."""
    import threading
    import time

    from fnet.io.ahead import load_ahead

    photo.save(tmp_path / "face.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    started, lock = [], threading.Lock()

    def path_of(number: int):
        with lock:
            started.append(number)
        return tmp_path / ("broken.jpg" if number == 7 else "face.png")

    taken = []
    for number, image in load_ahead(range(200), workers=3, path_of=path_of, ahead=5):
        time.sleep(0.002)  # the consumer is slower than decoding
        with lock:
            assert len(started) <= len(taken) + 1 + 5  # this item, plus the window
        taken.append(number)
        assert isinstance(image, ImageError) == (number == 7)
    assert taken == list(range(200))  # in order, none lost

    stream = load_ahead(range(10_000), workers=2, path_of=path_of, ahead=4)
    started.clear()
    next(stream), next(stream)
    stream.close()  # a consumer that stops early does not make the rest decode
    assert len(started) <= 2 + 4 + 2  # taken + window + at most one in flight per worker


FUZZ_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF", "JPEG2000", "DDS", "ICO", "PPM", "TGA", "PCX", "SGI", "QOI", "MSP")


def _mutations(data: bytes, rng: np.random.Generator, count: int):
    """Seeded damage: flipped bytes, cut tails, spliced garbage, zeroed headers."""
    for number in range(count):
        raw = bytearray(data)
        kind = number % 4
        if kind == 0:  # a few random bytes changed, header included
            for position in rng.integers(0, len(raw), int(rng.integers(1, 12))):
                raw[position] = int(rng.integers(0, 256))
        elif kind == 1:  # truncated anywhere
            raw = raw[: int(rng.integers(1, len(raw)))]
        elif kind == 2:  # garbage inserted after the header
            at = int(rng.integers(8, max(9, len(raw))))
            raw[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        else:  # the first bytes after the signature zeroed
            raw[4:24] = bytes(20)
        yield bytes(raw)


def test_fuzzed_files_of_every_format_never_escape_as_anything_but_image_error(tmp_path, photo):
    """Thousands of damaged files, named .jpg as users' files are: each decodes or raises ImageError, never another error."""
    import time

    small = photo.resize((48, 48))
    rng = np.random.default_rng(2026)
    deadline = time.monotonic() + 60  # bounded in time; the count below finishes well within it
    tried, escaped = 0, []
    for fmt in FUZZ_FORMATS:
        buffer = io.BytesIO()
        try:
            (small.convert("RGB") if fmt not in ("GIF", "PCX") else small.convert("P")).save(buffer, fmt)
        except (OSError, KeyError, ValueError):
            continue  # this Pillow cannot write the format here
        for number, data in enumerate(_mutations(buffer.getvalue(), rng, 160)):
            if time.monotonic() > deadline:
                break
            path = tmp_path / f"{fmt}-{number}.jpg"
            path.write_bytes(data)
            try:
                image = load_image(path)
                assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
            except ImageError as err:
                assert err.path == str(path) and err.reason
            except Exception as err:  # noqa: BLE001 (the point: nothing else may escape)
                escaped.append(f"{fmt} #{number}: {type(err).__name__}: {err}")
            path.unlink()
            tried += 1
    assert tried >= 2000, tried
    assert not escaped, escaped[:10]


def test_decode_ahead_also_bounds_memory(tmp_path, photo):
    """With a memory budget, large photos are decoded fewer at a time; a photo over the budget still goes alone."""
    import threading
    import time

    from fnet.io.ahead import load_ahead

    big, small = photo.resize((400, 400)), photo.resize((100, 100))
    big.save(tmp_path / "big.png")
    small.save(tmp_path / "small.png")
    started, lock = [], threading.Lock()

    def path_of(number: int):
        if threading.current_thread() is not threading.main_thread():  # a decode, not a look at the header
            with lock:
                started.append(number)
        return tmp_path / ("big.png" if number % 2 else "small.png")

    taken = []
    budget = decode_cost(tmp_path / "big.png").peak_bytes + decode_cost(tmp_path / "small.png").peak_bytes
    for number, _ in load_ahead(range(40), workers=2, path_of=path_of, ahead=16, max_bytes=budget):
        time.sleep(0.002)
        with lock:
            in_window = {n for n in started if n not in taken} - {number}
        # the window never holds two big photos: their decoding would exceed the budget
        assert sum(n % 2 for n in in_window) <= 1, (number, sorted(in_window))
        taken.append(number)
    assert taken == list(range(40))


def test_two_large_progressive_jpegs_never_decode_at_once(tmp_path):
    """A progressive JPEG's decoding holds every coefficient of the whole photo, at any fraction: the
    window counts them, so two such photos are never in it together, though their decoded pixels
    (a quarter of the photo's) would fit twice."""
    import threading
    import time

    from fnet.io.ahead import load_ahead

    face = Image.open(DEEPFACE / "img1.jpg").convert("RGB")
    progressive = save(face.resize((2400, 1800)), tmp_path / "progressive.jpg", "JPEG", progressive=True, quality=90)
    small = save(face.resize((200, 150)), tmp_path / "small.jpg", "JPEG", quality=90)
    cost, small_cost = decode_cost(progressive, 1000), decode_cost(small, 1000)
    assert cost.pixels == 1200 * 900  # decoded at 1/2
    assert cost.peak_bytes >= 3 * 1200 * 900 + 2 * 1.5 * 2400 * 1800  # its pixels, and 4:2:0 coefficients of the whole
    assert 2 * 3 * cost.pixels < cost.peak_bytes  # counting decoded pixels alone let two in at once
    started, lock = [], threading.Lock()

    def path_of(number: int):
        if threading.current_thread() is not threading.main_thread():
            with lock:
                started.append(number)
        return progressive if number % 2 else small

    taken = []
    for number, image in load_ahead(range(20), workers=2, path_of=path_of, ahead=8, reduce_to=1000,
                                    max_bytes=cost.peak_bytes + 3 * small_cost.peak_bytes):
        time.sleep(0.005)
        with lock:
            in_window = {n for n in started if n not in taken} - {number}
        assert sum(n % 2 for n in in_window) <= 1, (number, sorted(in_window))
        taken.append(number)
        assert isinstance(image, Reduced) if number % 2 else image.shape == (150, 200, 3)
    assert taken == list(range(20))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from /proc")
def test_decode_cost_is_what_decoding_holds(tmp_path):
    """The estimate against the memory decoding really takes, in a fresh process: a 12 MP progressive
    JPEG decoded at 1/4 (about 36 MB of coefficients for 2 MB of pixels) and a turned baseline one."""
    import subprocess

    face = Image.open(DEEPFACE / "img1.jpg").convert("RGB").resize((4000, 3000))
    progressive = save(face, tmp_path / "progressive.jpg", "JPEG", progressive=True, quality=90)
    exif = face.getexif()
    exif[0x0112] = 6
    turned = save(face, tmp_path / "turned.jpg", "JPEG", quality=90, exif=exif.tobytes())
    probe = (
        "import sys\n"
        "from fnet.io.ahead import decode_cost\n"
        "from fnet.io.images import load_reduced\n"
        "def peak():\n"
        "    return next(int(line.split()[1]) * 1024 for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "before = peak()\n"
        "load_reduced(sys.argv[1], 1000)\n"
        "print(peak() - before, decode_cost(sys.argv[1], 1000).peak_bytes)\n"
    )
    for path in (progressive, turned):
        measured, estimated = map(int, subprocess.check_output([sys.executable, "-c", probe, str(path)], text=True).split())
        assert 0.8 * measured <= estimated <= 1.25 * measured, (path.name, measured, estimated)


def test_large_jpegs_decode_reduced_upright_with_their_scale(tmp_path):
    """load_reduced: a JPEG of at least twice the asked side decodes at 1/2, 1/4 or 1/8 of its
    size (never below the side), upright as its EXIF tag says, and says how to map back."""
    source = Image.open(DEEPFACE / "img1.jpg").convert("RGB")
    big = source.resize((4032, 3024))
    exif = big.getexif()
    exif[0x0112] = 6  # stored sideways, as phones do
    path = save(big, tmp_path / "phone.jpg", "JPEG", exif=exif.tobytes(), quality=92)
    whole = load_image(path)
    reduced = load_reduced(path, 1024)
    assert isinstance(reduced, Reduced) and reduced.path == path
    assert whole.shape == reduced.shape == (4032, 3024, 3)
    assert reduced.pixels.shape == (2016, 1512, 3) and reduced.scale == (2.0, 2.0)
    halved = np.asarray(Image.fromarray(whole).reduce(2), np.float32)
    assert np.abs(halved - reduced.pixels).mean() < 2.0  # the same picture, upright the same way
    assert load_reduced(path, 600).pixels.shape == (1008, 756, 3)  # 1/4: 1/8 would leave 504 px, under 600
    assert load_reduced(path, 500).pixels.shape == (504, 378, 3)
    # the decode-ahead window counts what will be decoded, from the header alone: the pixels, twice
    # (turned upright, a copy), and the file's bytes
    whole_cost, reduced_cost = decode_cost(path), decode_cost(path, 1024)
    assert whole_cost.pixels == 4032 * 3024 and reduced_cost.pixels == 2016 * 1512
    assert reduced_cost.peak_bytes == 2 * 3 * 2016 * 1512 + path.stat().st_size
    assert np.array_equal(reduced.whole(), whole) and whole_photo(reduced).shape == whole.shape
    # smaller than twice the side, or not a JPEG: decoded whole, as load_image does
    assert isinstance(load_reduced(path, 2100), np.ndarray)
    png = save(source.resize((2400, 1800)), tmp_path / "big.png", "PNG")
    assert np.array_equal(load_reduced(png, 1024), load_image(png))


def pillow_reference(path, reduce_to=None) -> np.ndarray:
    """What Pillow alone makes of a JPEG: decoded at load_reduced's fraction, turned upright."""
    from PIL import ImageOps

    from fnet.io.images import reduction

    with Image.open(path) as image:
        fraction = reduction(image, reduce_to)
        if fraction > 1:
            image.draft(None, (image.width // fraction, image.height // fraction))
        return np.asarray(ImageOps.exif_transpose(image.convert("RGB")))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpegs_decode_to_pillows_very_pixels_at_every_scale_and_orientation(tmp_path, orientation):
    """The libjpeg-turbo path (decode_jpeg + upright) against Pillow's own decode: identical
    arrays, whole and reduced, for each of the eight EXIF orientations; a real LFW photo too."""
    source = Image.open(DEEPFACE / "img1.jpg").convert("RGB").resize((1601, 1203))  # odd sides: rounding of 1/2, 1/4, 1/8
    exif = source.getexif()
    exif[0x0112] = orientation
    path = save(source, tmp_path / f"o{orientation}.jpg", "JPEG", exif=exif.tobytes(), quality=90)
    with Image.open(path) as image:
        assert decode_jpeg(image) is not None  # this photo takes the fast path, not Pillow's
    for reduce_to in (None, 700, 300, 150):
        ours = load_reduced(path, reduce_to) if reduce_to else load_image(path)
        pixels = ours.pixels if isinstance(ours, Reduced) else ours
        reference = pillow_reference(path, reduce_to)
        assert pixels.flags.c_contiguous and pixels.dtype == np.uint8
        assert pixels.shape == reference.shape and np.array_equal(pixels, reference), (orientation, reduce_to)
        if isinstance(ours, Reduced):
            assert ours.shape[:2] == load_image(path).shape[:2]
    lfw = next(LFW.glob("*/*.jpg"))
    assert np.array_equal(load_image(lfw), pillow_reference(lfw))


def test_a_multi_picture_jpeg_decodes_to_its_main_photo(tmp_path):
    """MPO, as phones write a photo with its depth map or preview: the first photo, on the fast path."""
    source = Image.open(DEEPFACE / "img1.jpg").convert("RGB").resize((1200, 900))
    path = tmp_path / "phone.jpg"
    source.save(path, "MPO", save_all=True, append_images=[source.rotate(90)], quality=90)
    with Image.open(path) as image:
        assert image.format == "MPO" and decode_jpeg(image) is not None
    assert np.array_equal(load_image(path), pillow_reference(path))
    assert load_reduced(path, 400).pixels.shape == (450, 600, 3)


def test_photos_that_are_not_rgb_jpegs_are_left_to_pillow(tmp_path, photo):
    """Grey and CMYK JPEGs and other formats: decode_jpeg declines, Pillow decodes them (as before)."""
    for name, image, fmt in [("grey.jpg", photo.convert("L"), "JPEG"), ("cmyk.jpg", photo.convert("CMYK"), "JPEG"),
                             ("a.png", photo, "PNG")]:
        path = save(image, tmp_path / name, fmt)
        with Image.open(path) as opened:
            assert decode_jpeg(opened) is None
        assert load_image(path).shape == (photo.height, photo.width, 3)


def test_small_photos_can_be_decoded_in_turn_on_the_consumers_thread(tmp_path, photo):
    """in_turn_below: photos under that many pixels decode when taken, on the consumer's thread; larger ones ahead."""
    import threading

    from fnet.io.ahead import load_ahead

    photo.resize((400, 400)).save(tmp_path / "big.png")
    photo.resize((100, 100)).save(tmp_path / "small.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    decoded_on = {}

    def path_of(number: int):
        name = "broken.jpg" if number == 5 else "big.png" if number % 3 == 0 else "small.png"
        if threading.current_thread() is not threading.main_thread() or number in decoded_on:  # the second call decodes
            decoded_on[number] = threading.current_thread().name
        else:
            decoded_on[number] = None  # the header's look, on the consumer's thread
        return tmp_path / name

    taken = [(number, image) for number, image in load_ahead(range(12), 2, path_of, ahead=4, max_bytes=10**8, in_turn_below=200 * 200)]
    assert [number for number, _ in taken] == list(range(12))
    for number, image in taken:
        if number == 5:
            assert isinstance(image, ImageError)  # a broken file is reported in its place, as ever
        else:
            assert image.shape == ((400, 400, 3) if number % 3 == 0 else (100, 100, 3))
            assert (decoded_on[number] == "MainThread") == (number % 3 != 0), (number, decoded_on[number])
