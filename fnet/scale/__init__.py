"""Scale-out: fnet's stages on a Ray cluster (``pip install 'fnet[ray]'``).

The pipeline stays fnet's own: a Ray actor holds a ``fnet.pipeline`` model and aligner and
embeds batches of photos; the driver writes what comes back through the same part files and
atomic join as a single-process ``fnet embed``. Importing this package does not import Ray.
"""

from fnet.scale.ray_embed import RayProducer, RaySettings
from fnet.scale.ray_index import build_index_on_ray

__all__ = ["RayProducer", "RaySettings", "build_index_on_ray"]
