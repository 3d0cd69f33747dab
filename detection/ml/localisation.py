"""Grad-CAM on patches (pytorch-grad-cam), to compare with the per-patch tamper map of scoring.py."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from .constants import CLASS_INDEX
from .scoring import Detector


def gradcam(detector: Detector, patches: torch.Tensor, target: str | None = None) -> np.ndarray:
    """(N, P, P) Grad-CAM maps in [0, 1] for class ``target`` (default: each patch's predicted class)."""
    model = detector.model
    targets = None if target is None else [ClassifierOutputTarget(CLASS_INDEX[target])] * len(patches)
    with GradCAM(model=model, target_layers=[model.cam_layer]) as cam:
        maps = cam(input_tensor=patches.float().to(detector.device), targets=targets)
    model.eval()
    return np.asarray(maps, np.float32)
