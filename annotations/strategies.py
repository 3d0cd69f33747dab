"""Active-learning query strategies behind one ``Strategy`` protocol, selected by name (MONAI-Label style).

Pure numpy, no Django: the queue service and scripts/bench_active_learning.py share them.

A strategy sees a ``Pool`` of unlabelled candidates (class probabilities, optionally MC-dropout samples
and embeddings, plus embeddings of what is already labelled) and returns ``k`` candidate indices in
query order together with a per-candidate priority (higher = ask sooner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

EPS = 1e-12


@dataclass
class Pool:
    probs: np.ndarray  # (N, C) mean predicted probabilities
    mc_probs: np.ndarray | None = None  # (T, N, C) MC-dropout samples
    embeddings: np.ndarray | None = None  # (N, D)
    labelled_embeddings: np.ndarray | None = None  # (M, D): diversity keeps away from these too
    labelled_counts: np.ndarray | None = None  # (C,) labels per class so far: class balancing evens these out

    def __len__(self) -> int:
        return len(self.probs)

    def subset(self, idx: np.ndarray) -> Pool:
        """The candidates ``idx`` only (the labelled embeddings stay: they describe what is known already)."""
        idx = np.asarray(idx, dtype=int)
        return Pool(
            probs=self.probs[idx],
            mc_probs=None if self.mc_probs is None else self.mc_probs[:, idx],
            embeddings=None if self.embeddings is None else self.embeddings[idx],
            labelled_embeddings=self.labelled_embeddings,
            labelled_counts=self.labelled_counts,
        )


class Strategy(Protocol):
    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]  # subset of {"mc", "embeddings"} the pool must carry

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """-> (indices in query order, len <= k; priority per pool item, shape (N,))."""
        ...


_REGISTRY: dict[str, Callable[[], Strategy]] = {}


def register(cls: type) -> type:
    _REGISTRY[cls.name] = cls
    return cls


def get_strategy(name: str) -> Strategy:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; choose one of {', '.join(available())}") from None


def available() -> list[str]:
    return sorted(_REGISTRY)


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p + EPS)).sum(-1)


class _ScoreStrategy:
    """Rank by a per-item uncertainty score; ties broken at random so equal scores do not cluster."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()

    def score(self, pool: Pool) -> np.ndarray:
        raise NotImplementedError

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.score(pool).astype(np.float64)
        order = np.lexsort((rng.random(len(s)), -s))
        return order[:k], s


@register
class RandomStrategy(_ScoreStrategy):
    name = "random"

    def score(self, pool: Pool) -> np.ndarray:
        return np.zeros(len(pool))


@register
class EntropyStrategy(_ScoreStrategy):
    name = "entropy"

    def score(self, pool: Pool) -> np.ndarray:
        return entropy(pool.probs)


@register
class MarginStrategy(_ScoreStrategy):
    name = "margin"

    def score(self, pool: Pool) -> np.ndarray:
        top2 = np.sort(pool.probs, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])


@register
class LeastConfidenceStrategy(_ScoreStrategy):
    name = "least_confidence"

    def score(self, pool: Pool) -> np.ndarray:
        return 1.0 - pool.probs.max(1)


def bald(pool: Pool) -> np.ndarray:
    """Mutual information between prediction and weights over MC-dropout samples (BALD)."""
    if pool.mc_probs is None:
        raise ValueError("this strategy needs MC-dropout samples (pool.mc_probs)")
    return entropy(pool.mc_probs.mean(0)) - entropy(pool.mc_probs).mean(0)


@register
class MCDropoutStrategy(_ScoreStrategy):
    """BALD: mutual information between prediction and weights = epistemic part of the uncertainty."""

    name = "mc_dropout"
    needs = frozenset({"mc"})

    def score(self, pool: Pool) -> np.ndarray:
        return bald(pool)


def k_center_greedy(
    emb: np.ndarray, k: int, seed_emb: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Core-set selection (Sener & Savarese 2018): repeatedly take the point farthest from the chosen set."""
    n = len(emb)
    if n == 0 or k <= 0:
        return np.zeros(0, int)
    if seed_emb is not None and len(seed_emb):
        d = np.min(((emb[:, None, :] - seed_emb[None, :, :]) ** 2).sum(-1), axis=1)
        first = int(np.argmax(d))
    else:
        first = int(rng.integers(n))
        d = np.full(n, np.inf)
    chosen = [first]
    d = np.minimum(d, ((emb - emb[first]) ** 2).sum(-1))
    while len(chosen) < min(k, n):
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, ((emb - emb[nxt]) ** 2).sum(-1))
    return np.asarray(chosen)


def _normalise(emb: np.ndarray) -> np.ndarray:
    return emb / (np.linalg.norm(emb, axis=1, keepdims=True) + EPS)


@register
class CoreSetStrategy:
    """Pure diversity: k-center greedy on embeddings, seeded with the labelled set."""

    name: ClassVar[str] = "coreset"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if pool.embeddings is None:
            raise ValueError("coreset needs embeddings")
        emb = _normalise(pool.embeddings)
        seed = _normalise(pool.labelled_embeddings) if pool.labelled_embeddings is not None else None
        chosen = k_center_greedy(emb, k, seed, rng)
        prio = np.zeros(len(pool))
        prio[chosen] = np.linspace(1.0, 0.5, len(chosen)) if len(chosen) else []
        return chosen, prio


class _DiverseStrategy(_ScoreStrategy):
    """Batch mode: shortlist the ``shortlist_factor * k`` most uncertain items, then k-center greedy on their
    embeddings (seeded with the labelled set) so one batch is not ten neighbouring slices of one nodule.
    Query order is the k-center order; priority is the uncertainty score."""

    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})
    shortlist_factor: ClassVar[int] = 4

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if pool.embeddings is None:
            raise ValueError(f"{self.name} needs embeddings")
        shortlist, unc = super().select(pool, max(k * self.shortlist_factor, k), rng)
        emb = _normalise(pool.embeddings[shortlist])
        seed = _normalise(pool.labelled_embeddings) if pool.labelled_embeddings is not None else None
        return shortlist[k_center_greedy(emb, k, seed, rng)], unc


@register
class DiverseEntropyStrategy(_DiverseStrategy):
    name = "diverse_entropy"

    def score(self, pool: Pool) -> np.ndarray:
        return entropy(pool.probs)


@register
class DiverseMCDropoutStrategy(_DiverseStrategy):
    """BALD shortlist + k-center: the epistemic uncertainty of ``mc_dropout`` without its near-duplicate
    batches (a batch of the top-k BALD items is often one ambiguous structure seen k times)."""

    name = "diverse_mc_dropout"
    needs = frozenset({"mc", "embeddings"})

    def score(self, pool: Pool) -> np.ndarray:
        return bald(pool)


class _ClassBalancedStrategy:
    """Class-balanced batch (after Aggarwal et al., WACV 2021): each slot goes to the class with the fewest
    labels so far, counting the batch's earlier picks by their predicted probabilities (the expected label),
    and ``pick`` chooses one unlabelled candidate for it. Tampering is rare in a real queue, so uncertainty
    sampling and random sampling both spend most labels on genuine tissue."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()

    def score(self, pool: Pool) -> np.ndarray | None:
        """A per-candidate score ``pick`` may use, computed once per batch."""
        return None

    def pick(self, pool: Pool, members: np.ndarray, free: np.ndarray, target: int, rng: np.random.Generator,
             score: np.ndarray | None) -> int:
        """members: free candidates predicted (arg-max) as ``target``; free: every candidate still free."""
        raise NotImplementedError

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n, n_classes = pool.probs.shape
        counts = (np.zeros(n_classes) if pool.labelled_counts is None
                  else np.asarray(pool.labelled_counts, dtype=np.float64).copy())  # fmt: skip
        predicted = pool.probs.argmax(1)
        score = self.score(pool)
        free = np.ones(n, bool)
        chosen: list[int] = []
        while len(chosen) < min(k, n):
            target = int(np.lexsort((rng.random(n_classes), counts))[0])  # fewest labels, ties at random
            choice = self.pick(pool, np.flatnonzero(free & (predicted == target)), free, target, rng, score)
            chosen.append(choice)
            free[choice] = False
            counts += pool.probs[choice]
        prio = np.zeros(n)
        prio[chosen] = np.linspace(1.0, 0.5, len(chosen)) if chosen else []
        return np.asarray(chosen, dtype=int), prio


def _most_probable(pool: Pool, free: np.ndarray, target: int, rng: np.random.Generator) -> int:
    key = np.where(free, pool.probs[:, target], -np.inf)
    return int(np.lexsort((rng.random(len(key)), -key))[0])


@register
class ClassBalancedStrategy(_ClassBalancedStrategy):
    """Per slot: the candidate most likely to be the least-labelled class (stored probabilities only)."""

    name = "class_balanced"

    def pick(self, pool: Pool, members: np.ndarray, free: np.ndarray, target: int, rng: np.random.Generator,
             score: np.ndarray | None) -> int:
        return _most_probable(pool, free, target, rng)


@register
class BalancedMCDropoutStrategy(_ClassBalancedStrategy):
    """Per slot: among the candidates predicted as the least-labelled class, the one the MC-dropout samples
    disagree on most (BALD); if none is predicted as it, the most probable one."""

    name = "balanced_mc_dropout"
    needs = frozenset({"mc"})

    def score(self, pool: Pool) -> np.ndarray:
        return bald(pool)

    def pick(self, pool: Pool, members: np.ndarray, free: np.ndarray, target: int, rng: np.random.Generator,
             score: np.ndarray | None) -> int:
        if not len(members) or score is None:
            return _most_probable(pool, free, target, rng)
        return int(members[np.lexsort((rng.random(len(members)), -score[members]))[0]])


@register
class BalancedRandomStrategy(_ClassBalancedStrategy):
    """Per slot: a random candidate among those predicted as the least-labelled class (if none is, the most
    probable one): stratified sampling by predicted class, no label read."""

    name = "balanced_random"

    def pick(self, pool: Pool, members: np.ndarray, free: np.ndarray, target: int, rng: np.random.Generator,
             score: np.ndarray | None) -> int:
        return int(rng.choice(members)) if len(members) else _most_probable(pool, free, target, rng)
