"""Candidate features for strategies that need more than stored probabilities: patch embeddings and
MC-dropout samples from the model that scored the series (pure torch/numpy, no Django)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# Head-only sampling costs a few small matrix products, so take enough passes for a steady BALD ranking:
# BALD is a difference of two Monte-Carlo averages whose error falls as 1/sqrt(passes).
MC_SAMPLES = 100


def mc_head_samples(model: torch.nn.Module, emb: torch.Tensor, samples: int = MC_SAMPLES) -> np.ndarray:
    """(T, N, C) softmax samples with dropout on. Every detector has its only dropout right before the
    classifier (detection.ml.models.Head), so sampling the head on fixed embeddings is exactly MC-dropout
    and costs one trunk pass instead of T."""
    head = model.head
    was_training = head.training
    head.train()
    try:
        with torch.inference_mode():
            runs = torch.stack([head(emb).softmax(1) for _ in range(samples)])
    finally:
        head.train(was_training)
    return runs.float().cpu().numpy()


def detector_features(
    detector, vol: np.ndarray, locs: Sequence[tuple[int, int, int]], mc_samples: int = MC_SAMPLES, batch: int = 256,
    breaks: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """Embeddings, deterministic probs and MC samples for (slice, x, y) locations of a HU volume
    (``mc_samples=0``: no MC samples, ``mc_probs`` is None; ``breaks``: gaps, as the detector reads them)."""
    embs, probs, mcs = [], [], []
    model = detector.model
    for start in range(0, len(locs), batch):
        patches = detector.patches(vol, locs[start : start + batch], breaks).to(detector.device)
        with torch.inference_mode():
            emb = model.embed(patches)
            probs.append(model.head(emb).softmax(1).float().cpu().numpy())
        embs.append(emb.float().cpu().numpy())
        if mc_samples:
            mcs.append(mc_head_samples(model, emb, mc_samples))
    if not locs:
        empty_mc = np.zeros((mc_samples, 0, 4)) if mc_samples else None
        return {"embeddings": np.zeros((0, 1)), "probs": np.zeros((0, 4)), "mc_probs": empty_mc}
    mc_probs = np.concatenate(mcs, 1) if mc_samples else None
    return {"embeddings": np.concatenate(embs), "probs": np.concatenate(probs), "mc_probs": mc_probs}
