"""batched_nms through facenet-pytorch's own numpy NMS ('Union' overlap, as torchvision's)."""


def batched_nms(boxes, scores, idxs, iou_threshold):
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy

    return batched_nms_numpy(boxes, scores, idxs, iou_threshold, "Union")
