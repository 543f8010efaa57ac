"""The torch port against OpenCV DNN running the very same TensorFlow graph (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fnet
from fnet.core.embedder import standardize
from fnet.core.pretrained import REGISTRY

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (in the dev extra) is the parity oracle")


@pytest.fixture(scope="module")
def opencv_net():
    source = REGISTRY["facenet-casia"].source
    return cv2.dnn.readNetFromTensorflow(str(source.locate(*source.files)))


@pytest.fixture(scope="module")
def model():
    """The port in fp32: parity is a property of the converted weights (bf16, auto on AMX CPUs, is tested in test_device)."""
    return fnet.load_model(device="cpu", precision="fp32")


def opencv_embed(net, crops: np.ndarray) -> np.ndarray:
    x = standardize(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), "fixed").numpy()
    out = []
    for face in x:  # the graph's reshapes make OpenCV run it at batch 1
        net.setInput(face[None])
        out.append(net.forward()[0].copy())
    return np.stack(out)


def test_embeddings_match_opencv_on_real_faces(model, people_crops, opencv_net):
    crops, _ = people_crops
    crops = crops[::2]  # 15 real faces of 10 people
    ours = model.embed(crops)
    reference = opencv_embed(opencv_net, crops)
    assert np.abs(ours - reference).max() <= 1e-4


def test_unfused_trainable_module_matches_too(model, people_crops, opencv_net):
    """The BN-unfolded module (what training starts from) computes the same function in eval mode."""
    crops, _ = people_crops
    x = standardize(torch.from_numpy(crops[:3]).permute(0, 3, 1, 2).float(), "fixed")
    with torch.no_grad():
        ours = model.module.eval()(x).numpy()
    assert np.abs(ours - opencv_embed(opencv_net, crops[:3])).max() <= 1e-4
