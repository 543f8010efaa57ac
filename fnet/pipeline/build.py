"""``load_pipeline``: the one place where a model, a detector and an aligner are put together.

The command line, the Python API (``fnet.verify``, ``fnet.faces``, ``fnet.embed``), the
benchmarks and the server all build their parts here, from the same settings with the same
defaults. Nothing heavy happens at construction: the model's metadata is read (so a wrong
name fails at once), the detector is built on first use and the weights load on first use,
or in the background from ``preload()`` while photos are decoded and faces found.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from fnet.core.detectors import DETECTORS
from fnet.crops import MODES, PICKS
from fnet.errors import SettingsError
from fnet.face import DETECT_SIZE
from fnet.pipeline.aligner import Aligner, AlignSettings

if TYPE_CHECKING:
    from fnet.core.detectors import Detector
    from fnet.core.embedder import Embedder
    from fnet.core.info import ModelInfo


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    model: str | None = None  # a pretrained name (`fnet models`) or a checkpoint file; None: the default model
    detector: str = "mtcnn"  # a name in fnet.core.detectors.DETECTORS
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda[:N], mps
    precision: str = "auto"  # auto (bf16 on GPUs and AMX CPUs, else fp32), fp32, fp16, bf16
    min_face: int = 20  # smallest face searched for, in pixels
    detect_size: int = DETECT_SIZE  # longer photos are searched on a copy this long (0: full size)
    mode: str = "auto"  # auto: the model's own (ModelInfo.alignment); crop: box + margin; similarity, chip: 5-point warps
    margin: float = 32  # around the box, in pixels of the crop (crop mode)
    pick: str = "center"  # which face of a photo: center, largest, or all
    size: int | None = None  # crop size; None: the model's input size
    batch_size: int | None = None  # faces per forward pass; None: 16 on a CPU, 64 on a GPU

    def __post_init__(self):
        if self.mode != "auto" and self.mode not in MODES:
            raise SettingsError(f"mode must be auto or one of {', '.join(MODES)}, not {self.mode!r}")
        if self.pick not in PICKS:
            raise SettingsError(f"pick must be one of {', '.join(PICKS)}, not {self.pick!r}")
        DETECTORS.entry(self.detector)  # an unknown name fails here, listing the known ones
        if self.min_face < 1 or self.detect_size < 0 or (self.batch_size is not None and self.batch_size < 1):
            raise SettingsError("min_face and batch_size must be at least 1, detect_size 0 or more")


class Pipeline:
    """A model, a detector and an aligner, built once and shared by every stage."""

    def __init__(self, settings: PipelineSettings = PipelineSettings()):
        from fnet.core.loading import model_info  # a file header or a registry entry: no weights

        self.settings = settings
        self.info: ModelInfo = model_info(settings.model)
        self._lock = threading.Lock()
        self._loading: Future | None = None

    def __repr__(self) -> str:
        s = self.settings
        return f"Pipeline({self.info.name}, detector={s.detector}, device={s.device}, mode={self.mode})"

    def preload(self) -> Pipeline:
        """Start loading the weights on a background thread (faces can be found meanwhile)."""
        with self._lock:
            if self._loading is None:
                self._loading = Future()
                threading.Thread(target=self._load, name="fnet-model-loader", daemon=True).start()
        return self

    def _load(self) -> None:
        from fnet.core.loading import load_model

        s = self.settings
        try:
            self._loading.set_result(load_model(s.model, device=s.device, precision=s.precision, batch_size=s.batch_size))
        except BaseException as err:  # noqa: BLE001 (re-raised in the thread that asks for the model)
            self._loading.set_exception(err)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (or waited for, after ``preload``)."""
        return self.preload()._loading.result()

    @functools.cached_property
    def detector(self) -> Detector:
        s = self.settings
        return DETECTORS.build(s.detector, device=s.device, min_face=s.min_face, detect_size=s.detect_size)

    @property
    def mode(self) -> str:
        """How faces are cut out: the settings' mode, or with "auto" the model's own alignment."""
        return self.info.alignment if self.settings.mode == "auto" else self.settings.mode

    @property
    def crop_size(self) -> int:
        return self.settings.size or self.info.input_size

    def aligner(self, pick: str | None = None) -> Aligner:
        """An aligner on the shared detector; pick overrides the settings' (e.g. "all" to keep every face)."""
        s = self.settings
        return Aligner(self.detector, AlignSettings(size=self.crop_size, margin=s.margin, mode=self.mode, pick=pick or s.pick))


def load_pipeline(model: str | os.PathLike | None = None, **settings) -> Pipeline:
    """A pipeline for `model` (default: the built-in pretrained model); settings as in ``PipelineSettings``.

    >>> pipeline = load_pipeline("facenet-casia", device="cpu", min_face=40)
    """
    return Pipeline(PipelineSettings(model=None if model is None else str(model), **settings))
