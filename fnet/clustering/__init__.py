"""Grouping face embeddings by person (see methods.py for the choices)."""

from fnet.clustering.methods import METHODS, ClusterError, ClusterSettings, by_size, cluster

__all__ = ["METHODS", "ClusterError", "ClusterSettings", "by_size", "cluster"]
