"""How far annotators agree: with each other on the same review-queue item, and with the item's final answer.

Only labels given through the review queue count: there several annotators label the same slice and location
independently, so their labels can be compared. The final answer is the item's consensus (all agreed) or an
expert's adjudication. Kappa is Cohen's: chance-corrected agreement, 1 perfect, 0 what chance would give.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score

from detection.ml.constants import CLASSES


@dataclass(frozen=True)
class ItemLabels:
    """One queue item: its independent labels (one per annotator), its final answer and the model's guess."""

    item_id: int
    labels: tuple[tuple[str, str], ...]  # (annotator, class)
    final: str = ""  # '' while undecided
    model: str = ""  # the model's most probable class when the item was queued; '' if unknown


def _kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa, or None where it is undefined (both raters used one and the same class throughout)."""
    if not a:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa: reported as None below
        value = cohen_kappa_score(a, b, labels=list(CLASSES))
    return None if np.isnan(value) else round(float(value), 4)


def _rate(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def annotator_tallies(items: Iterable[ItemLabels]) -> dict[str, dict]:
    """Per annotator: their labels, labels per class and, on decided items read by two or more (a single
    reader's label is the final answer: no test of it), how many match the final answer and how many an
    expert's adjudication overruled."""
    tallies: dict[str, dict] = defaultdict(lambda: {"labels": 0, "classes": Counter(), "decided": 0,
                                                    "agreed_with_final": 0, "overruled": 0})  # fmt: skip
    for item in items:
        labels = set(item.labels)
        read_by_several = len({who for who, _ in labels}) >= 2
        unanimous = len({cls for _, cls in labels}) <= 1
        for who, cls in labels:
            row = tallies[who]
            row["labels"] += 1
            row["classes"][cls] += 1
            if item.final and read_by_several:
                row["decided"] += 1
                row["agreed_with_final"] += cls == item.final
                row["overruled"] += cls != item.final and not unanimous
    return dict(tallies)


def agreement_report(items: Iterable[ItemLabels]) -> dict:
    """Pairwise agreement between annotators, each annotator against the final answers, the model likewise.

    ``overall.kappa`` pools every pair of labels on the same item in both orders, so both raters share one
    class distribution (Scott's pi, which Fleiss' kappa generalises).
    """
    pair_labels: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    index = {c: i for i, c in enumerate(CLASSES)}
    items = list(items)
    multi_read = 0
    model_n = model_hits = 0
    for item in items:
        labels = sorted(set(item.labels))
        multi_read += len({who for who, _ in labels}) >= 2
        for (who_a, a), (who_b, b) in itertools.combinations(labels, 2):
            if who_a == who_b:
                continue
            first, second = pair_labels[(who_a, who_b)]
            first.append(a)
            second.append(b)
            confusion[index[a], index[b]] += 1
            confusion[index[b], index[a]] += 1
        if item.final and item.model:
            model_n += 1
            model_hits += item.model == item.final

    all_a = [c for a, b in pair_labels.values() for c in a + b]
    all_b = [c for a, b in pair_labels.values() for c in b + a]
    n_pairs = len(all_a) // 2
    return {
        "classes": list(CLASSES),
        "overall": {
            "items_with_two_or_more_labels": multi_read,
            "label_pairs": n_pairs,
            "agreement": _rate(sum(x == y for x, y in zip(all_a, all_b, strict=True)) // 2, n_pairs),
            "kappa": _kappa(all_a, all_b),
        },
        "pairs": [
            {"annotators": [who_a, who_b], "items": len(a), "agreement": _rate(sum(map(str.__eq__, a, b)), len(a)),
             "kappa": _kappa(a, b)}
            for (who_a, who_b), (a, b) in sorted(pair_labels.items())
        ],  # fmt: skip
        "annotators": [
            {"annotator": who, "labels": row["labels"], "classes": {c: row["classes"][c] for c in CLASSES},
             "decided": row["decided"], "agreed_with_final": row["agreed_with_final"], "overruled": row["overruled"],
             "agreement_with_final": _rate(row["agreed_with_final"], row["decided"])}
            for who, row in sorted(annotator_tallies(items).items())
        ],  # fmt: skip
        # confusion[i][j]: how often one annotator chose classes[i] where another chose classes[j] (symmetric)
        "confusion": confusion.tolist(),
        "model": {"decided": model_n, "agreed_with_final": model_hits,
                  "agreement_with_final": _rate(model_hits, model_n)},
    }
