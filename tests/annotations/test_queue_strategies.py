"""The queue builder hands batch-mode strategies one batch of unlabelled candidates, so what an annotator
is queued is the strategy's diverse batch (not a ranking of everything with the batch cut off afterwards)."""

import numpy as np
import pytest

from annotations.models import QueueItem
from annotations.services import job_candidates, label_create, queue_build
from annotations.strategies import Pool


def _candidates() -> tuple[list[tuple[int, int, int]], Pool]:
    """28 candidates: 0-19 one ambiguous nodule over neighbouring slices (on 0-9 the dropout samples disagree
    most, on 10-19 only a little), 20-22 three other sites (disagree less than on 0-9, more than on 10-19),
    23-27 confident background far out in embedding space."""
    flip = np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97]] * 5)
    mild = np.array([[0.8, 0.1, 0.05, 0.05], [0.2, 0.1, 0.05, 0.65]] * 5)
    weak = np.array([[0.9, 0.05, 0.03, 0.02], [0.75, 0.1, 0.1, 0.05]] * 5)
    sure = np.tile([0.99, 0.004, 0.003, 0.003], (10, 1))
    mc = np.stack([flip] * 10 + [weak] * 10 + [mild] * 3 + [sure] * 5, axis=1)
    rng = np.random.default_rng(3)
    # Strategies compare embedding directions (cosine), so each structure gets its own direction.
    emb = np.vstack([
        np.array([1.0, 0.0, 0.0]) + rng.normal(0, 0.01, (20, 3)), [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]],
        [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [-1.0, -1.0, 0.0], [-1.0, 0.0, -1.0], [-1.0, 1.0, 1.0]],
    ])  # fmt: skip
    locs = [(i, 256, 256) for i in range(20)] + [(12, 100, 300), (15, 400, 120), (18, 420, 420)]
    locs += [(2 + i, 60 + 40 * i, 60) for i in range(5)]
    return locs, Pool(probs=mc.mean(0), mc_probs=mc, embeddings=emb)


@pytest.mark.django_db
def test_queue_gets_the_diverse_epistemic_batch_and_skips_labelled_candidates(series_factory, scored_job,
                                                                             user_factory):  # fmt: skip
    series = series_factory()
    locs, pool = _candidates()
    job = scored_job(series, locs, pool.probs)
    # The pool is indexed like job_candidates (slice, then row, then column), as candidate_pool builds it.
    where = {loc: i for i, loc in enumerate(locs)}
    pool = pool.subset(np.array([where[(c.slice_index, c.x, c.y)] for c in job_candidates(job)]))
    items = queue_build(job=job, strategy="diverse_mc_dropout", batch_size=4, pool=pool)
    picked = {(i.slice_index, i.x, i.y) for i in items}
    assert len(items) == 4 and {i.strategy for i in items} == {"diverse_mc_dropout"}
    assert len(picked & set(locs[:20])) == 1 and set(locs[20:23]) <= picked  # one nodule slice, three sites
    assert not picked & set(locs[23:])  # confident background never reaches an annotator
    assert [i.priority for i in items] == sorted((i.priority for i in items), reverse=True)

    # Someone labels one of the three sites: the rebuild never re-asks it and still fills a whole batch.
    label_create(user=user_factory("expert"), series=series, slice_index=12, x=100, y=300, label_class="TM")
    rebuilt = queue_build(job=job, strategy="diverse_mc_dropout", batch_size=4, pool=pool)
    again = {(i.slice_index, i.x, i.y) for i in rebuilt}
    assert len(rebuilt) == 4 and (12, 100, 300) not in again and set(locs[21:23]) <= again
    assert QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN).count() == 4
