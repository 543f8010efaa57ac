"""FaceDetector: batched MTCNN (image pyramid, P-Net, R-Net, O-Net) on any device.

Reproduces the ``mtcnn`` package's pipeline (its TF-AREA pyramid, crop-and-resize with
zeros outside the image, box regression, suppression rules and thresholds) with torch
tensors end to end: images of the same size share P-Net batches, and every candidate
of every image goes through R-Net and O-Net together, in bounded sub-batches.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from fnet.core.checkpoint import load_weights
from fnet.core.device import configure_cpu_threads, resolve_device
from fnet.core.models.mtcnn import ONet, PNet, RNet
from fnet.core.pretrained import mtcnn_weights
from fnet.core.resize import AreaPyramid
from fnet.errors import SettingsError
from fnet.face import DETECT_SIZE, Face


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    min_face_size: int = 20
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)
    nms_pnet_scale: float = 0.5  # within one pyramid level
    nms_pnet: float = 0.7  # across levels
    nms_rnet: float = 0.7
    nms_onet: float = 0.7  # with the 'min' overlap
    # Candidates per R-Net pass (O-Net, whose patches have 4x the pixels, takes a quarter). A batch
    # of busy photos brings 1,000+; at 4,096 a pass held ~200 MB of activations, and the run's peak
    # memory was its busiest batch's. 256: the same speed, 0.56 instead of 0.60 GiB on 150 photos.
    max_candidates: int = 256
    # Photos per P-Net pass: as many same-size photos as fit in this many pixels (at least one).
    # A pass holds its photos' pyramid as floats and P-Net's activations: with 2 MP, two phone
    # photos (each shrunk to 1024 px) went together, as fast as one at a time, and the 180 large
    # photos of bench/memory.py, aligned in one process, peaked at 575-603 MB instead of 526-532.
    pnet_pixels: int = 1_000_000
    # Input pixels per P-Net call: a larger pyramid level goes through in horizontal strips, the
    # same maps in pieces (_pnet). A level's activations otherwise grow with the photo: with
    # --detect-size 0, 30 phone photos (12 MP) peaked at 1.22-1.53 GB, in strips 1.03 GB, as fast.
    pnet_strip_pixels: int = 262_144
    # Photos longer than this are detected on a downscaled copy (boxes mapped back); faces
    # under min_face_size / scale are then missed. None: full resolution, as the reference.
    max_side: int | None = DETECT_SIZE

    def __post_init__(self):
        if self.min_face_size < 1:
            raise SettingsError(f"the smallest face must be at least 1 pixel, not {self.min_face_size}")
        if self.max_side is not None and self.max_side < 48:
            raise SettingsError(f"the detection size must be at least 48 pixels (or none), not {self.max_side}")


def downscaled(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float, float]:
    """(image, x scale, y scale): the photo shrunk (box filter) so its longer side is at most max_side.

    The scales map pixel centres back: x_full = (x + 0.5) * sx - 0.5.
    """
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image, 1.0, 1.0
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BOX))
    return small, width / size[0], height / size[1]


def normalized(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [-1, 1], as MTCNN was trained."""
    return pixels.float().sub_(127.5).div_(128.0)


def pyramid_scales(width: int, height: int, min_face_size: int, scale_factor: float, cell: int = 12) -> list[float]:
    """The reference's pyramid: cell/min_face_size times powers of the factor."""
    count = round(-(math.log(min(width, height) / cell) / math.log(scale_factor) + 1))
    return [cell / min_face_size * scale_factor**k for k in range(max(count, 0))]


def _overlap(boxes: torch.Tensor, others: torch.Tensor, method: str) -> torch.Tensor:
    """Pairwise IoU ('union') or intersection over the smaller area ('min'), (n, m)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_o = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    wh = (torch.minimum(boxes[:, None, 2:], others[None, :, 2:]) - torch.maximum(boxes[:, None, :2], others[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    denom = area[:, None] + area_o[None, :] - inter if method == "union" else torch.minimum(area[:, None], area_o[None, :])
    return inter / denom


def rank_by_image(scores: torch.Tensor, image_ids: torch.Tensor) -> torch.Tensor:
    """Indices grouped by image, best score first within each.

    Ties matter: P-Net's softmax saturates, so many candidates score exactly 1.0, and which
    one wins decides the final box. The reference ranks with numpy's argsort, reversed; so
    does this, image by image, so a photo's result never depends on its batch companions.
    """
    values, ids = scores.detach().double().cpu().numpy(), image_ids.cpu().numpy()
    groups = [np.flatnonzero(ids == i) for i in np.unique(ids)]
    order = np.concatenate([g[np.argsort(values[g])[::-1]] for g in groups]) if groups else np.zeros(0, np.int64)
    return torch.from_numpy(order.astype(np.int64)).to(scores.device)


def suppress(boxes: torch.Tensor, scores: torch.Tensor, image_ids: torch.Tensor, threshold: float, method: str = "union") -> torch.Tensor:
    """Indices of kept boxes, best first per image: a box goes if a better box of its image overlaps it > threshold.

    This is the ``mtcnn`` package's rule (stricter than greedy NMS: a suppressed box still
    suppresses), vectorised; columns are processed in chunks so memory stays bounded.
    """
    order = rank_by_image(scores, image_ids)
    boxes, image_ids = boxes[order], image_ids[order]
    n = len(order)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    chunk = max(1, 2**24 // max(n, 1))
    rows = torch.arange(n, device=boxes.device)
    for start in range(0, n, chunk):
        cols = slice(start, min(start + chunk, n))
        overlapped = _overlap(boxes, boxes[cols], method) > threshold
        overlapped &= image_ids[:, None] == image_ids[None, cols]
        overlapped &= rows[:, None] < rows[None, cols]  # only better boxes count
        keep[cols] = ~overlapped.any(0)
    return order[keep]


def to_square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow the shorter side to the longer, keeping the centre (no rounding, as the reference)."""
    wh = boxes[:, 2:] - boxes[:, :2]
    side = wh.max(1, keepdim=True).values
    top_left = boxes[:, :2] + wh * 0.5 - side * 0.5
    return torch.cat([top_left, top_left + side], 1)


def crop_and_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """TF's crop_and_resize on one (C, H, W) image: bilinear samples, 0 outside the image.

    As the reference, box coordinates are divided by the image size and mapped back with
    (size - 1), and sampling points outside [0, size - 1] give exactly 0.
    """
    _, height, width = image.shape
    steps = torch.arange(size, device=image.device, dtype=image.dtype) / (size - 1)
    y = (boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps) * ((height - 1) / height)  # (n, size)
    x = (boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps) * ((width - 1) / width)
    grid = torch.stack(
        [(2 * x / (width - 1) - 1)[:, None, :].expand(-1, size, -1), (2 * y / (height - 1) - 1)[:, :, None].expand(-1, -1, size)],
        dim=-1,
    )  # (n, size, size, 2)
    n = len(boxes)
    patches = F.grid_sample(image[None], grid.reshape(1, n * size, size, 2), mode="bilinear", align_corners=True)
    patches = patches.reshape(image.shape[0], n, size, size).permute(1, 0, 2, 3)
    inside = ((y >= 0) & (y <= height - 1))[:, :, None] & ((x >= 0) & (x <= width - 1))[:, None, :]
    return patches * inside[:, None]


class FaceDetector:
    """MTCNN face detection for batches of RGB uint8 images of any sizes.

    >>> detector = FaceDetector()
    >>> faces = detector.detect([photo])[0]     # list of Face, left to right
    """

    def __init__(self, device: str | torch.device = "auto", settings: DetectorSettings = DetectorSettings()):
        self.device = resolve_device(device)
        self.settings = settings
        if self.device.type == "cpu":
            configure_cpu_threads()
        state = load_weights(mtcnn_weights())
        # channels_last: twice as fast for P-Net's wide, shallow convolutions on CPU
        self.pnet, self.rnet, self.onet = (
            net.eval().to(self.device, memory_format=torch.channels_last) for net in (PNet(), RNet(), ONet())
        )
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            net.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(name + ".")})

    @property
    def detect_size(self) -> int | None:
        """The longest side it searches (larger photos are shrunk to it first); None: photos as they are."""
        return self.settings.max_side

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """One list of faces per image, left to right; an image without faces gives []."""
        if not len(images):
            return []
        tensors, scales = [], []
        for image in images:  # one photo at a time: a batch never holds its shrunk copies twice
            small, sx, sy = downscaled(image, self.settings.max_side)
            tensors.append(self._pixels(small)), scales.append((sx, sy))
        boxes, scores, ids = self._propose(tensors)
        boxes, scores, ids, _ = self._refine(tensors, boxes, ids, stage=self.rnet, size=24, threshold=self.settings.thresholds[1])
        keep = suppress(boxes, scores, ids, self.settings.nms_rnet)
        boxes, ids = to_square(boxes[keep]), ids[keep]
        boxes, scores, ids, landmarks = self._refine(tensors, boxes, ids, stage=self.onet, size=48, threshold=self.settings.thresholds[2])
        keep = suppress(boxes, scores, ids, self.settings.nms_onet, method="min")
        faces = self._faces(len(images), tensors, boxes[keep], scores[keep], ids[keep], landmarks[keep])
        return [
            found if sx == sy == 1.0 else [face.rescaled(sx, sy, image.shape) for face in found]
            for found, (sx, sy), image in zip(faces, scales, images)
        ]

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        """H x W x 3 uint8 -> (3, H, W) uint8 on the device, a view of HWC memory (what the pyramid reads).

        Kept as bytes: a batch of eight 1 MP photos would hold 96 MB as floats for the whole
        detection; each is made float (normalized) only while a stage reads it.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SettingsError(f"images must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
        return torch.from_numpy(np.array(image, copy=not image.flags.writeable)).to(self.device).permute(2, 0, 1)

    def _propose(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P-Net over every pyramid level; images of one size are stacked into one batch."""
        s = self.settings
        passes: dict[tuple[int, int], list[list[int]]] = {}  # same-size photos, split to fit pnet_pixels
        for index, tensor in enumerate(tensors):
            height, width = tensor.shape[1:]
            chunks = passes.setdefault((height, width), [[]])
            if chunks[-1] and (len(chunks[-1]) + 1) * height * width > s.pnet_pixels:
                chunks.append([])  # large photos go alone: their memory grows with the batch, their speed does not
            chunks[-1].append(index)
        all_boxes, all_scores, all_ids = [], [], []
        for (height, width), members in ((size, chunk) for size, chunks in passes.items() for chunk in chunks):
            pyramid = AreaPyramid(normalized(torch.stack([tensors[i].permute(1, 2, 0) for i in members])))
            member_ids = torch.tensor(members, device=self.device)
            level_boxes, level_scores, level_ids = [], [], []
            for scale in pyramid_scales(width, height, s.min_face_size, s.scale_factor):
                h, w = int(height * scale), int(width * scale)
                if min(h, w) < 12:
                    break
                offsets, probs = self._pnet(pyramid.resize(h, w))
                b, y, x = torch.nonzero(probs > s.thresholds[0], as_tuple=True)
                if not len(b):
                    continue
                # The reference's 12 x 12 cell spans [2x + 1, 2x + 12]: 11 px of regression scale.
                cell = torch.stack([x, y, x, y], 1).float() * 2 + torch.tensor([1, 1, 12, 12], device=self.device)
                reg = offsets[b, :, y, x] * 11
                boxes, scores, ids = (cell + reg) / scale, probs[b, y, x], member_ids[b]
                keep = suppress(boxes, scores, ids, s.nms_pnet_scale)
                level_boxes.append(boxes[keep]), level_scores.append(scores[keep]), level_ids.append(ids[keep])
            if level_boxes:
                boxes, scores, ids = torch.cat(level_boxes), torch.cat(level_scores), torch.cat(level_ids)
                keep = suppress(boxes, scores, ids, s.nms_pnet)
                all_boxes.append(to_square(boxes[keep])), all_scores.append(scores[keep]), all_ids.append(ids[keep])
        if not all_boxes:
            empty = torch.zeros((0, 4), device=self.device)
            return empty, empty[:, 0], torch.zeros(0, dtype=torch.long, device=self.device)
        return torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_ids)

    def _pnet(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over one (N, 3, H, W) pyramid level, in strips of about pnet_strip_pixels input pixels."""
        n, _, height, width = level.shape
        rows = max(32, self.settings.pnet_strip_pixels // (n * width)) // 2 * 2  # even; a level is 12+ px wide
        if height <= rows:
            return self.pnet(level)
        # Output row j sees input rows [2j, 2j + 12): a strip from an even row s yields rows s/2 on,
        # and the next strip starts 10 input rows before this one ends, where its outputs stop. The
        # last strip ends with the level, so max pooling's partial last window is the same as whole.
        outputs = [self.pnet(level[:, :, start : start + rows]) for start in range(0, height - 10, rows - 10)]
        return torch.cat([o[0] for o in outputs], 2), torch.cat([o[1] for o in outputs], 1)

    def _refine(self, tensors, boxes, ids, stage, size: int, threshold: float):
        """Run R-Net or O-Net on every candidate, regress the boxes, keep those above threshold."""
        order = torch.argsort(ids, stable=True)  # candidates grouped by image: crops come out in this order
        boxes, ids = boxes[order], ids[order]
        results = []
        step = max(1, self.settings.max_candidates * 24 * 24 // (size * size))
        for start in range(0, len(boxes), step):
            chunk_boxes, chunk_ids = boxes[start : start + step], ids[start : start + step]
            patches = torch.cat([crop_and_resize(normalized(tensors[i]), chunk_boxes[chunk_ids == i], size)
                                 for i in chunk_ids.unique().tolist()])
            results.append(stage(patches))
        if not results:
            return boxes, boxes[:, 0], ids, boxes.new_zeros((0, 10))
        offsets, scores = torch.cat([r[0] for r in results]), torch.cat([r[-1] for r in results])
        sizes = (boxes[:, 2:] - boxes[:, :2] + 1).repeat(1, 2)  # (w, h, w, h), +1 as the reference
        landmarks = boxes.new_zeros((len(boxes), 10))
        if len(results[0]) == 3:  # O-Net: landmarks relative to the input box
            marks = torch.cat([r[1] for r in results])
            landmarks = torch.cat([sizes[:, :1] * marks[:, :5] + boxes[:, :1] - 1, sizes[:, 1:2] * marks[:, 5:] + boxes[:, 1:2] - 1], 1)
        boxes = boxes + offsets * sizes
        keep = scores > threshold
        return boxes[keep], scores[keep], ids[keep], landmarks[keep]

    def _faces(self, count, tensors, boxes, scores, ids, landmarks) -> list[list[Face]]:
        faces: list[list[Face]] = [[] for _ in range(count)]
        boxes, scores, ids, landmarks = (t.cpu().numpy() for t in (boxes, scores, ids, landmarks))
        for box, score, index, marks in zip(boxes, scores, ids, landmarks):
            height, width = tensors[index].shape[1:]
            x1, x2 = np.clip(box[[0, 2]], 0, width - 1)
            y1, y2 = np.clip(box[[1, 3]], 0, height - 1)
            faces[index].append(Face((float(x1), float(y1), float(x2), float(y2)), float(score), marks.reshape(2, 5).T.copy()))
        for found in faces:  # one order in every output: face 0 is the leftmost
            found.sort(key=lambda face: (face.box[0], face.box[1]))
        return faces
