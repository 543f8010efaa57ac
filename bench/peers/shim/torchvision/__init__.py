"""A stand-in for the two torchvision functions facenet-pytorch's MTCNN calls.

PyPI has no CPU build of torchvision for torch 2.13 (its wheels link CUDA libraries), so the
facenet-pytorch peer gets batched NMS from facenet-pytorch's own numpy NMS (the one it
already uses for its last stage) and to_tensor as a plain transpose. Used by
bench/peers/facenet_pytorch_peer.py only, and only when torchvision cannot be imported.
"""
