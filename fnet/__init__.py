"""fnet: FaceNet face recognition: align, embed, verify, search, cluster, train, evaluate."""

__version__ = "0.1.0"

__all__ = ["ImageError", "__version__", "load_image", "load_model"]


def __getattr__(name: str):
    # Lazy, so that `import fnet` and `fnet --help` stay fast (torch loads on first use).
    if name == "load_model":
        from fnet.loading import load_model

        return load_model
    if name in ("load_image", "ImageError"):
        from fnet.io import images

        return getattr(images, name)
    raise AttributeError(f"module 'fnet' has no attribute {name!r}")
