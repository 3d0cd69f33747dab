"""Strategy plug-ins: each asks for what its definition says it should."""

import numpy as np
import pytest

from annotations.strategies import Pool, available, get_strategy


def test_registry_lists_all_strategies_and_refuses_unknown_names():
    assert {"random", "entropy", "margin", "least_confidence", "mc_dropout", "coreset", "diverse_entropy"} <= set(
        available()
    )
    with pytest.raises(KeyError, match="unknown strategy"):
        get_strategy("bogus")


def test_uncertainty_strategies_ask_about_the_unsure_item_first():
    probs = np.array([[0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    rng = np.random.default_rng(0)
    assert get_strategy("entropy").select(Pool(probs), 1, rng)[0][0] == 1
    assert get_strategy("least_confidence").select(Pool(probs), 1, rng)[0][0] == 1
    # margin: top-2 tie (0.5 vs 0.5) is the hardest call even though entropy is lower
    assert get_strategy("margin").select(Pool(probs), 1, rng)[0][0] == 2


def test_mc_dropout_prefers_disagreement_between_samples_over_agreed_ambiguity():
    agreed = np.tile([0.25, 0.25, 0.25, 0.25], (10, 1))  # aleatoric: every sample equally unsure
    flip = np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97]] * 5)  # epistemic: samples disagree
    mc = np.stack([agreed, flip], axis=1)  # (T=10, N=2, C=4)
    pool = Pool(probs=mc.mean(0), mc_probs=mc)
    assert get_strategy("mc_dropout").select(pool, 1, np.random.default_rng(0))[0][0] == 1
    with pytest.raises(ValueError):
        get_strategy("mc_dropout").select(Pool(probs=mc.mean(0)), 1, np.random.default_rng(0))


def test_diverse_batch_is_not_ten_neighbouring_slices():
    """Ten near-duplicates (one nodule over neighbouring slices) are the most uncertain; three other sites
    are slightly less so. Plain entropy takes the duplicates; the diversity-aware batch spreads out."""
    rng = np.random.default_rng(0)
    cluster = np.array([50.0, 50.0]) + rng.normal(0, 0.1, (10, 2))
    others = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    emb = np.vstack([cluster, others])
    probs = np.vstack([np.tile([0.25] * 4, (10, 1)), np.tile([0.4, 0.2, 0.2, 0.2], (3, 1))])
    pool = Pool(probs=probs, embeddings=emb)
    plain = set(get_strategy("entropy").select(pool, 4, rng)[0])
    diverse = set(get_strategy("diverse_entropy").select(pool, 4, rng)[0])
    assert plain <= set(range(10))
    assert len(diverse & set(range(10))) == 1 and {10, 11, 12} <= diverse
    coreset = get_strategy("coreset").select(Pool(probs=probs, embeddings=emb, labelled_embeddings=emb[:1]), 3, rng)
    assert not set(coreset[0]) & set(range(10))  # the labelled nodule's neighbours are covered already


def test_random_baseline_depends_only_on_the_seed():
    pool = Pool(np.random.default_rng(1).dirichlet(np.ones(4), 50))
    a = get_strategy("random").select(pool, 10, np.random.default_rng(7))[0]
    b = get_strategy("random").select(pool, 10, np.random.default_rng(7))[0]
    c = get_strategy("random").select(pool, 10, np.random.default_rng(8))[0]
    assert list(a) == list(b) and list(a) != list(c) and len(set(a)) == 10


def _epistemic_pool(rng: np.random.Generator) -> tuple[Pool, set[int], set[int]]:
    """One ambiguous structure over twenty neighbouring slices (the dropout samples disagree most on 0-9, a
    little on 10-19), three other sites (20-22, disagreement in between), and five items every sample calls
    a coin flip (23-27: aleatoric, nothing to learn from a label)."""
    flip = np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97]] * 5)  # (T=10, C)
    mild = np.array([[0.8, 0.1, 0.05, 0.05], [0.2, 0.1, 0.05, 0.65]] * 5)
    weak = np.array([[0.9, 0.05, 0.03, 0.02], [0.75, 0.1, 0.1, 0.05]] * 5)
    coin = np.tile([0.25, 0.25, 0.25, 0.25], (10, 1))
    mc = np.stack([flip] * 10 + [weak] * 10 + [mild] * 3 + [coin] * 5, axis=1)  # (T, N=28, C)
    cluster = np.array([1.0, 0.0, 0.0]) + rng.normal(0, 0.01, (20, 3))  # strategies compare directions
    sites = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    emb = np.vstack([cluster, sites, [[-1.0, 0.0, 0.0]] * 5 + rng.normal(0, 0.3, (5, 3))])
    return Pool(probs=mc.mean(0), mc_probs=mc, embeddings=emb), set(range(20)), set(range(23, 28))


def test_diverse_mc_dropout_asks_about_epistemic_disagreement_without_near_duplicates():
    rng = np.random.default_rng(0)
    pool, duplicates, aleatoric = _epistemic_pool(rng)
    plain = set(get_strategy("mc_dropout").select(pool, 4, rng)[0])
    diverse = set(get_strategy("diverse_mc_dropout").select(pool, 4, rng)[0])
    assert plain <= set(range(10))  # plain BALD spends the whole batch on one structure
    assert len(diverse & duplicates) == 1 and {20, 21, 22} <= diverse
    assert not diverse & aleatoric  # what every sample agrees is a coin flip is not worth asking about
    assert set(get_strategy("diverse_entropy").select(pool, 4, rng)[0]) & aleatoric  # entropy would ask
    with pytest.raises(ValueError):
        get_strategy("diverse_mc_dropout").select(Pool(probs=pool.probs, embeddings=pool.embeddings), 4, rng)


def test_pool_subset_keeps_candidates_aligned_and_the_labelled_context():
    rng = np.random.default_rng(0)
    pool, _, _ = _epistemic_pool(rng)
    pool.labelled_embeddings = np.zeros((2, 3))
    sub = pool.subset(np.array([22, 3]))
    assert np.allclose(sub.probs, pool.probs[[22, 3]]) and np.allclose(sub.embeddings, pool.embeddings[[22, 3]])
    assert np.allclose(sub.mc_probs, pool.mc_probs[:, [22, 3]]) and sub.labelled_embeddings is pool.labelled_embeddings



def test_typiclust_takes_the_typical_member_of_each_uncovered_region():
    """Three regions; one already has a label. A batch of two goes to the two uncovered regions, larger one
    first, and takes each region's most central point, not its outlier."""
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    sizes = [30, 20, 12]
    emb = np.vstack([c + rng.normal(0, 1.0, (s, 2)) for c, s in zip(centres, sizes, strict=True)])
    emb = np.vstack([emb, [[10.0, 4.0]]])  # an outlier of the largest region
    region = np.repeat([0, 1, 2], sizes).tolist() + [0]
    pool = Pool(probs=np.full((len(emb), 4), 0.25), embeddings=emb, labelled_embeddings=centres[2:] + 0.1)
    chosen, prio = get_strategy("typiclust").select(pool, 2, np.random.default_rng(1))
    assert [region[i] for i in chosen] == [0, 1]
    assert len(emb) - 1 not in chosen  # the outlier is never the representative
    for i, r in zip(chosen, (0, 1), strict=True):  # the pick sits near its region's centre
        assert np.linalg.norm(emb[i] - emb[np.array(region) == r].mean(0)) < 1.0
    assert prio.shape == (len(emb),)


def test_typiclust_bald_switches_from_typical_to_epistemic_picks_at_40_labels():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 3))
    mc = rng.dirichlet(np.ones(4), size=(10, 60))

    def picks(name: str, n_labelled: int) -> list[int]:
        labelled = np.random.default_rng(n_labelled).normal(size=(n_labelled, 3))
        pool = Pool(probs=mc.mean(0), mc_probs=mc, embeddings=emb, labelled_embeddings=labelled)
        return list(get_strategy(name).select(pool, 4, np.random.default_rng(1))[0])

    assert picks("typiclust_bald", 39) == picks("typiclust", 39) != picks("diverse_mc_dropout", 39)
    assert picks("typiclust_bald", 40) == picks("diverse_mc_dropout", 40) != picks("typiclust", 40)


def test_typicality_equals_the_direct_definition_in_chunks():
    from annotations.strategies import typicality

    emb = np.random.default_rng(0).normal(size=(150, 8))
    d = np.sqrt(((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1))  # the definition, all pairs at once
    np.fill_diagonal(d, np.inf)
    direct = 1.0 / np.sort(d, axis=1)[:, :20].mean(1)
    assert np.allclose(typicality(emb, 20, chunk=32), direct)
    assert np.allclose(typicality(emb, 20), direct)


def test_density_bald_prefers_a_dense_region_over_an_equally_unsure_outlier():
    """Two candidates with the same (highest) BALD: one inside a crowd, one far out. Plain diverse BALD cannot
    tell them apart; density-weighted BALD asks about the typical one first."""
    rng = np.random.default_rng(0)
    crowd = rng.normal(0, 0.3, (40, 2)) + [5.0, 0.0]
    emb = np.vstack([crowd, [[-30.0, 2.0]]])
    n = len(emb)
    unsure = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])  # two MC samples that disagree
    sure = np.array([[0.25, 0.25, 0.25, 0.25]] * 2)  # agree: BALD 0
    mc = np.repeat(sure[:, None, :], n, axis=1)
    crowd_pick, outlier = 3, n - 1
    mc[:, crowd_pick], mc[:, outlier] = unsure, unsure
    pool = Pool(probs=mc.mean(0), mc_probs=mc, embeddings=emb, labelled_embeddings=None)
    chosen, prio = get_strategy("density_bald").select(pool, 1, np.random.default_rng(0))
    assert list(chosen) == [crowd_pick]
    assert prio[crowd_pick] > prio[outlier] > 0


def test_typiclust_bald_asks_for_mc_samples_only_once_it_uses_them():
    from annotations.services import strategy_needs

    strat = get_strategy("typiclust_bald")
    assert strategy_needs(strat, 39) == {"embeddings"}
    assert strategy_needs(strat, 40) == {"mc", "embeddings"}
    assert strategy_needs(get_strategy("entropy"), 39) == frozenset()
