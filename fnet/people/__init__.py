"""People: a named gallery (gallery.py, SQLite) and open-set identification against it (identify.py).

Torch-free: the faces come in as embeddings, from the pipeline (fnet.pipeline.people).
"""
