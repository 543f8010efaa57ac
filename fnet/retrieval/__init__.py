"""Retrieval over embeddings (numpy and FAISS, no torch): indexes (faiss_index.py) and recognition (recognition.py)."""
