"""Training face embeddings: losses (losses.py: triplet, arcface), online triplet mining (miners.py),
identity-balanced batches (sampler.py), face folders (data.py) and the loop (loop.py).

``LOSSES`` lists the losses without importing torch (for --help); a loss's module loads when
it is built: ``LOSSES.build(name, settings, identities, embedding_dim)``.
"""

from fnet.registry import Registry

LOSSES = Registry("loss")
LOSSES.register(
    "triplet", "FaceNet's triplet loss with online mining: --margin, --mining, --pick, --fallback",
    "fnet.training.losses:build_triplet",
)
LOSSES.register(
    "arcface", "additive angular margin softmax over the training identities: --angular-margin, --scale",
    "fnet.training.losses:build_arcface",
)
