from __future__ import annotations

import pytest
import timm
import torch

from detection.ml.models import FAMILY_DEFAULTS, create_detector
from detection.ml.pretrained import lite0_weights_path, load_lite0_imagenet

NAMES = [
    *FAMILY_DEFAULTS,
    "smallcnn",
    "alexnet",
    "attention",
    "capsule",
    "bilstm",
    "timm:mobilenetv3_small_050",
]


@pytest.mark.parametrize("name", NAMES)
def test_registry_builds_and_runs(name: str) -> None:
    torch.manual_seed(0)
    model = create_detector(name, in_chans=4).eval()
    x = torch.rand(2, 4, 64, 64)
    with torch.inference_mode():
        logits, emb = model(x), model.embed(x)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    assert emb.shape[0] == 2 and emb.ndim == 2
    assert model.cam_layer is not None


def test_unknown_name_fails() -> None:
    with pytest.raises(KeyError):
        create_detector("no-such-net")


def test_efficientnet_lite0_imagenet_weights_load() -> None:
    src = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    loaded = load_lite0_imagenet(backbone, keep_classifier=True)
    assert len(loaded) == len(src)  # every tensor mapped, classifier included
    assert torch.equal(backbone.conv_stem.weight, src["_conv_stem.weight"])
    assert torch.equal(backbone.classifier.weight, src["_fc.weight"])
    model = create_detector("efficientnet_lite0_imagenet", in_chans=4).eval()
    stem = model.backbone.conv_stem.weight
    assert stem.shape[1] == 4 and not torch.equal(stem[:, :3], torch.zeros_like(stem[:, :3]))
    with torch.inference_mode():
        assert model(torch.rand(1, 4, 64, 64)).shape == (1, 4)
