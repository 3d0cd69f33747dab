"""Medical-image tamper detection core (CT-GAN style). Pure Python/PyTorch: no Django imports.

Public entry points:
    detection.ml.CLASSES                         ("TB", "TM", "FB", "FM")
    detection.ml.scoring.Detector / SeriesResult / LocationScore
    detection.ml.models.create_detector, register
    detection.ml.training.train, fine_tune, TrainConfig
    detection.ml.evaluation.evaluate
"""

from .constants import CLASSES

__all__ = ["CLASSES"]
