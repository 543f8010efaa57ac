"""Training FaceNet embeddings: triplet loss (losses.py), online mining (miners.py),
identity-balanced batches (sampler.py), face folders (data.py) and the loop (loop.py)."""
