"""Model zoo behind one registry: ``create_detector(name, **kw)``.

Every model maps a (B, C, P, P) 2.5D patch batch to (B, 4) logits in CLASSES order and exposes
``embed(x) -> (B, D)`` (used for active learning / uncertainty) and ``cam_layer`` (for Grad-CAM).
Dropout sits right before the classifier so MC-dropout works uniformly.

Names: any timm model name (optionally ``timm:<name>``), the family aliases ``efficientnet``, ``resnet``,
``densenet``, ``vgg``, ``convnext``, plus ``smallcnn`` (AlexNet-style), ``attention`` (CBAM on a timm
trunk),
``bilstm`` (bi-LSTM over per-slice embeddings along z), ``capsule`` and ``efficientnet_lite0_imagenet``.
"""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
from torch import nn

from .constants import CLASSES

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

# Small members of each requested family, so CPU training stays feasible.
FAMILY_DEFAULTS: dict[str, str] = {
    "efficientnet": "efficientnet_b0",
    "resnet": "resnet18",
    "densenet": "densenet121",
    "vgg": "vgg11",
    "convnext": "convnext_atto",
}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return deco


def available() -> list[str]:
    return sorted([*_REGISTRY, *FAMILY_DEFAULTS])


def create_detector(name: str, in_chans: int = 4, num_classes: int = len(CLASSES), **kw: object) -> nn.Module:
    """Build a patch classifier by registry name, family alias or timm name (never downloads weights)."""
    if name in _REGISTRY:
        return _REGISTRY[name](in_chans=in_chans, num_classes=num_classes, **kw)
    timm_name = FAMILY_DEFAULTS.get(name, name.removeprefix("timm:"))
    if not timm.is_model(timm_name):
        raise KeyError(f"unknown detector {name!r}; known: {available()}")
    return TimmClassifier(timm_name, in_chans=in_chans, num_classes=num_classes, **kw)


class Head(nn.Module):
    """Dropout + linear: the shared classifier so MC-dropout behaves the same in every family."""

    def __init__(self, dim: int, num_classes: int, drop: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(emb))


class PatchClassifier(nn.Module):
    """Base: subclasses implement ``embed``; ``forward`` = head(embed)."""

    head: Head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class TimmClassifier(PatchClassifier):
    def __init__(
        self, timm_name: str, in_chans: int, num_classes: int, drop: float = 0.3, **kw: object
    ) -> None:
        super().__init__()
        # pretrained=False always: no model hub here; ImageNet init comes from pretrained.py.
        self.backbone = timm.create_model(timm_name, pretrained=False, num_classes=0, in_chans=in_chans, **kw)
        with torch.no_grad():  # pooled width differs from num_features for VGG / MobileNetV3 pre-logits
            dim = self.backbone.eval()(torch.zeros(1, in_chans, 64, 64)).shape[1]
        self.head = Head(dim, num_classes, drop)
        self.cam_layer = self.backbone.get_submodule(self.backbone.feature_info[-1]["module"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


class SmallCNN(PatchClassifier):
    """AlexNet-style: large strided first kernel, then 3x3 convs; ~0.2M params, ~20 MMAC per 64 px patch."""

    def __init__(self, in_chans: int, num_classes: int, width: int = 32, drop: float = 0.3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(in_chans, w, 5, 2),
            nn.MaxPool2d(2),
            _conv(w, 2 * w, 3),
            nn.MaxPool2d(2),
            _conv(2 * w, 4 * w, 3),
            _conv(4 * w, 4 * w, 3),
        )
        self.cam_layer = self.features[-1]
        self.head = Head(4 * w, num_classes, drop)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean((2, 3))


register("smallcnn")(SmallCNN)
register("alexnet")(SmallCNN)


class CBAM(nn.Module):
    """Channel then spatial attention (Woo et al. 2018)."""

    def __init__(self, ch: int, reduction: int = 8) -> None:
        super().__init__()
        hid = max(ch // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(ch, hid, 1), nn.ReLU(True), nn.Conv2d(hid, ch, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


@register("attention")
class AttentionClassifier(PatchClassifier):
    """CBAM spatial-channel attention head on an (unpooled) timm trunk."""

    def __init__(
        self, in_chans: int, num_classes: int, backbone: str = "resnet10t", drop: float = 0.3
    ) -> None:
        super().__init__()
        self.backbone = timm.create_model(
            backbone, pretrained=False, num_classes=0, global_pool="", in_chans=in_chans
        )
        self.attn = CBAM(self.backbone.num_features)
        self.cam_layer = self.attn
        self.head = Head(self.backbone.num_features, num_classes, drop)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.backbone(x)).mean((2, 3))


@register("bilstm")
class SliceBiLSTM(PatchClassifier):
    """Each input channel is one slice along z; a shared CNN embeds it, a bi-LSTM reads the sequence.

    Use with a channel spec of neighbouring slices, e.g. lung window at z-2..z+2.
    """

    def __init__(
        self, in_chans: int, num_classes: int, width: int = 16, hidden: int = 64, drop: float = 0.3
    ) -> None:
        super().__init__()
        self.encoder = SmallCNN(1, num_classes, width=width)
        self.lstm = nn.LSTM(4 * width, hidden, batch_first=True, bidirectional=True)
        self.cam_layer = self.encoder.cam_layer
        self.head = Head(2 * hidden, num_classes, drop)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        seq = self.encoder.embed(x.reshape(b * t, 1, *x.shape[2:])).reshape(b, t, -1)
        out, _ = self.lstm(seq)
        return out.mean(1)


def squash(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    n2 = (s * s).sum(dim, keepdim=True)
    return s * n2 / (1 + n2) / torch.sqrt(n2 + 1e-8)


@register("capsule")
class CapsuleClassifier(PatchClassifier):
    """Small capsule net (Sabour et al. 2017): primary capsules, dynamic routing to one capsule per class.

    Logits are scaled capsule lengths so the usual cross-entropy training applies.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        types: int = 8,
        pdim: int = 8,
        cdim: int = 16,
        iters: int = 3,
        drop: float = 0.2,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(in_chans, 32, 5, 2), _conv(32, 64, 3, 2), nn.AdaptiveAvgPool2d(4))
        self.primary = nn.Conv2d(64, types * pdim, 3, padding=1)
        self.cam_layer = self.stem[1]
        self.types, self.pdim, self.cdim, self.iters, self.nc = types, pdim, cdim, iters, num_classes
        self.W = nn.Parameter(0.05 * torch.randn(types * 16, num_classes, cdim, pdim))
        self.drop = nn.Dropout(drop)
        self.head = _CapsLength(num_classes, cdim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        u = self.primary(self.stem(x)).reshape(b, self.types, self.pdim, 16).permute(0, 1, 3, 2)
        u = squash(self.drop(u.reshape(b, -1, self.pdim)))
        u_hat = torch.einsum("ncdp,bnp->bncd", self.W, u)
        logits = torch.zeros(b, u_hat.shape[1], self.nc, device=x.device)
        for _ in range(self.iters):
            v = squash((logits.softmax(-1).unsqueeze(-1) * u_hat).sum(1))
            logits = logits + (u_hat * v.unsqueeze(1)).sum(-1)
        return v.flatten(1)


class _CapsLength(Head):
    def __init__(self, num_classes: int, cdim: int) -> None:
        nn.Module.__init__(self)
        self.nc, self.cdim = num_classes, cdim
        self.drop = nn.Identity()  # dropout lives on the primary capsules

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return 10.0 * emb.reshape(-1, self.nc, self.cdim).norm(dim=-1)


@register("efficientnet_lite0_imagenet")
def _lite0_imagenet(in_chans: int, num_classes: int, **kw: object) -> nn.Module:
    from .pretrained import load_lite0_imagenet

    model = TimmClassifier("tf_efficientnet_lite0", in_chans=3, num_classes=num_classes, **kw)
    load_lite0_imagenet(model.backbone)
    if in_chans != 3:
        adapt_input(model.backbone, in_chans)
    return model


def adapt_input(backbone: nn.Module, in_chans: int) -> None:
    """Re-shape the stem conv to in_chans, keeping ImageNet filters (timm's own adaptation rule)."""
    from timm.models import adapt_input_conv

    stem_name = backbone.pretrained_cfg.get("first_conv", "conv_stem")
    conv: nn.Conv2d = backbone.get_submodule(stem_name)
    conv.weight = nn.Parameter(adapt_input_conv(in_chans, conv.weight.data))
    conv.in_channels = in_chans
