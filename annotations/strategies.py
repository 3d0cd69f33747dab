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
    emb: np.ndarray, k: int, seed_emb: np.ndarray | None, rng: np.random.Generator, start: int | None = None
) -> np.ndarray:
    """Core-set selection (Sener & Savarese 2018): repeatedly take the point farthest from the chosen set.
    Without a seed set the first point is ``start``, or a random one."""
    n = len(emb)
    if n == 0 or k <= 0:
        return np.zeros(0, int)
    if seed_emb is not None and len(seed_emb):
        d = np.min(((emb[:, None, :] - seed_emb[None, :, :]) ** 2).sum(-1), axis=1)
        first = int(np.argmax(d))
    else:
        first = int(rng.integers(n)) if start is None else start
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
        # nothing labelled yet: start from the most uncertain item, not a random one of the shortlist
        return shortlist[k_center_greedy(emb, k, seed, rng, start=0)], unc


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


def typicality(emb: np.ndarray, knn: int, chunk: int = 1024) -> np.ndarray:
    """Inverse mean distance to the ``knn`` nearest other points: high in dense regions, low for outliers.
    Squared distances from the Gram matrix, ``chunk`` rows at a time: no (N, N, D) difference tensor, so a
    whole scored CT (thousands of candidates) fits."""
    n = len(emb)
    if n < 2:
        return np.ones(n)
    k = max(1, min(knn, n - 1))
    sq = (emb**2).sum(1)
    out = np.empty(n)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * emb[rows] @ emb.T
        d2[np.arange(d2.shape[0]), np.arange(start, rows.stop)] = np.inf  # not its own neighbour
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        out[rows] = 1.0 / (np.sqrt(np.maximum(nearest, 0.0)).mean(1) + EPS)
    return out


def _candidates_then_labelled(pool: Pool) -> np.ndarray:
    """L2-normalised embeddings of the candidates (first ``len(pool)`` rows), then of the labelled items."""
    labelled = pool.labelled_embeddings if pool.labelled_embeddings is not None else pool.embeddings[:0]
    return _normalise(np.vstack([pool.embeddings, labelled]).astype(np.float64))


@register
class TypiClustStrategy:
    """Low-budget active learning (TypiClust, Hacohen, Dekel & Weinshall, ICML 2022): k-means the labelled and
    unlabelled embeddings into |labelled| + k clusters; each pick goes to the cluster with the fewest labelled
    points (the largest on a tie), and takes its most *typical* unlabelled member, so a small budget labels
    representative examples of every region instead of outliers. Clusters of <= 5 points are skipped while
    larger ones remain (the paper's outlier guard); at most 500 clusters; typicality over 20 neighbours within
    the cluster. Priority: typicality within the item's cluster."""

    name: ClassVar[str] = "typiclust"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})
    max_clusters: ClassVar[int] = 500
    min_cluster_size: ClassVar[int] = 5
    knn: ClassVar[int] = 20

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.cluster import KMeans  # only this strategy needs it

        if pool.embeddings is None:
            raise ValueError("typiclust needs embeddings")
        n = len(pool)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, int), np.zeros(n)
        points = _candidates_then_labelled(pool)
        n_labelled = len(points) - n
        n_clusters = min(n_labelled + k, self.max_clusters, len(points))
        cluster = KMeans(n_clusters, n_init=1, random_state=int(rng.integers(2**31))).fit_predict(points)
        size = np.bincount(cluster, minlength=n_clusters)
        covered = np.bincount(cluster[n:], minlength=n_clusters).astype(float)
        typ = np.zeros(len(points))
        for c in range(n_clusters):
            members = np.flatnonzero(cluster == c)
            typ[members] = typicality(points[members], self.knn)
        free = np.ones(n, bool)  # unlabelled and not yet picked in this batch
        chosen: list[int] = []
        for _ in range(k):
            open_ = np.bincount(cluster[:n][free], minlength=n_clusters) > 0
            eligible = open_ & (size > self.min_cluster_size)
            if not eligible.any():
                eligible = open_
            c = min(np.flatnonzero(eligible), key=lambda j: (covered[j], -size[j]))
            members = np.flatnonzero((cluster[:n] == c) & free)
            pick = int(members[np.argmax(typ[members])])
            chosen.append(pick)
            free[pick] = False
            covered[c] += 1
        return np.asarray(chosen), typ[:n]


@register
class TypiClustThenBALDStrategy:
    """``typiclust`` while fewer than ``switch_at`` items are labelled (it won the cold start in the benchmark),
    then ``diverse_mc_dropout`` (the best strategy once the head has enough labels to know what it does not
    know). The labelled count is the pool's labelled embeddings."""

    name: ClassVar[str] = "typiclust_bald"
    needs: ClassVar[frozenset[str]] = frozenset({"mc", "embeddings"})
    switch_at: ClassVar[int] = 40

    def _inner(self, n_labelled: int) -> Strategy:
        return TypiClustStrategy() if n_labelled < self.switch_at else DiverseMCDropoutStrategy()

    def needs_at(self, n_labelled: int) -> frozenset[str]:
        return self._inner(n_labelled).needs

    def select(self, pool: Pool, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labelled = 0 if pool.labelled_embeddings is None else len(pool.labelled_embeddings)
        return self._inner(labelled).select(pool, k, rng)


@register
class DensityBALDStrategy(_DiverseStrategy):
    """Information density (Settles & Craven 2008) on BALD: each candidate's BALD times its typicality (inverse
    mean distance to its 20 nearest neighbours among all labelled and unlabelled embeddings, scaled to max 1),
    then the ``diverse_mc_dropout`` batch step (4k shortlist, k-center seeded with the labelled set). Aimed at
    what the benchmark showed: plain BALD spends labels on outliers of the feature space, and typical picks
    made the later BALD picks better; one rule from the first query on, no switch point."""

    name = "density_bald"
    needs = frozenset({"mc", "embeddings"})
    knn: ClassVar[int] = 20

    def score(self, pool: Pool) -> np.ndarray:  # select() has checked that the pool carries embeddings
        typ = typicality(_candidates_then_labelled(pool), self.knn)[: len(pool)]
        return bald(pool) * typ / (typ.max() + EPS)
