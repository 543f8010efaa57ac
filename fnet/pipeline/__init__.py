"""The composition layer: every front end (CLI, Python API, server, benchmarks) works through it.

``load_pipeline`` builds the parts (model, detector, aligner) from one set of settings; the
stage modules here take a pipeline, or the parts it built:

    align      a folder tree of photos -> aligned crops + manifest (resumable)
    embed      crops or photos -> an embeddings store (resumable, sharded)
    faces      one photo -> every face with box, landmarks, crop and embedding
    verify     two photos -> same person or not
    index      a store -> a FAISS index;   search: photos -> nearest people, or unknown
    cluster    photos or a store -> faces grouped by person (incremental)
    evaluate   a list of pairs -> the paper's metrics and a report
"""

from fnet.pipeline.build import Pipeline, PipelineSettings, load_pipeline

__all__ = ["Pipeline", "PipelineSettings", "load_pipeline"]
