"""mrcnn_np: Mask R-CNN written from scratch in NumPy, for reading and for checking.

Subpackages (arrows point one way):
    ops        generic, torchvision-compatible ops (boxes, NMS, RoI ops, masks)
    detection  Mask R-CNN's own pieces (anchors, matcher, heads, the model)
    autodiff   autodiff-lite: Tensor + tape, layers, losses, SGD
    gpu        CuPy loading of the CUDA kernels in kernels/*.cu
    datasets   synthetic shapes data set, COCO-format reader
    engine     the training library: training, prediction, evaluation, checkpoints
"""

__version__ = "0.1.0"
