"""The core: the masking model, the objective, the metrics, the black boxes and the data.

Nothing here imports from :mod:`paperlib.experiments` or :mod:`paperlib.tools`.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``masker``         the masking model (U-Net decoder, feature filter), ``build_masker``
``encoders``       the frozen encoders the masker reads (ResNet-50, EfficientNet-Lite, CIFAR)
``objective``      eq. 4: evidence removal, TV, area, preserver/destroyer terms, presets
``metrics``        localisation (boxes, IoU, error) and the saliency metric
``segmentation``   segmentation metrics (confusion matrix, mIoU, FG precision, DR/NDR recall), mAP
``faithfulness``   deletion and insertion curves, the pointing game
``explainer``      classification and explanation from one backbone pass
``classifiers``    the black boxes behind one interface and their registry
``cifarnet``       the CIFAR-10 black box network and the reader of its weights
``storage``        saving and loading maskers (the shipped checkpoints)
``serialization``  files that load without running code (``safe_load``), plain data for every writer
``data``           ImageNet validation, VOC, the inventory of the data root
``folders``        ImageNet image folders and CIFAR-10 (torchvision; imported on first use)
``datafiles``      reading image files; locating data sets under the data root
``classes``        class names and indices
``paths``          where the repository, data, checkpoints and figures live
``errors``         the project's exception types
``_common``        shared helpers: input checks, devices, eval mode, atomic writes, hardware
=================  ==========================================================================
"""
