import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_moons

from labeler.core.graph import knn_graph, knn_indices
from labeler.core.propagate import Source, propagate
from labeler.core.review import (
    MAX_COVERAGE_CLUSTERS,
    MIN_COVERAGE_CLUSTERS,
    clusters,
    cold_start,
    coverage_clusters,
    isolated,
    possible_new_class,
    review_queue,
    suggested_queue,
    suspect_human_labels,
    suspect_log_ratios,
    uncovered_typicals,
)


@pytest.fixture(scope="module")
def moons():
    X, truth = make_moons(200, noise=0.12, random_state=0)
    W = knn_graph(X, 10, metric="euclidean")
    y = np.full(200, -1)
    rng = np.random.default_rng(0)
    for c in (0, 1):
        y[rng.choice(np.flatnonzero(truth == c), 3, replace=False)] = c
    return X, W, y, propagate(W, y, 2, n_bootstrap=10)


def test_queue_least_certain_first_with_random_share(moons):
    X, W, y, result = moons
    queue = review_queue(X, result, n_items=20, random_share=0.2, W=W)
    assert len(queue) == 20
    indices = [item.index for item in queue]
    assert len(set(indices)) == 20
    assert all(y[i] < 0 for i in indices)  # never a human label
    rules = [item.rule for item in queue]
    assert rules.count("random") == 4
    assert set(rules) <= {"random", "low margin", "high entropy", "unstable", "no seed reached"}
    uncertain = [item for item in queue if item.rule != "random"]
    scores = [item.score for item in uncertain]
    assert scores == sorted(scores, reverse=True)
    # The picked uncertain images are far less certain than the typical propagated image.
    assert np.mean(result.margin[[item.index for item in uncertain]]) < np.median(result.margin[y < 0])
    # Random items are spread through the queue, not all at its end.
    assert rules[:10].count("random") >= 1


def test_queue_is_diverse_and_respects_exclude(moons):
    X, W, y, result = moons
    queue = review_queue(None, result, n_items=15, random_share=0.0, W=W, exclude=np.arange(50))
    picked = np.array([item.index for item in queue])
    assert np.all(picked >= 50)
    # No two uncertain picks are graph neighbours.
    assert W[picked][:, picked].nnz == 0


def test_queue_diversity_from_embeddings():
    # 30 near-duplicate pairs: without a graph, cosine similarity keeps both members of a pair out.
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 6))
    X = np.vstack([base, base + 1e-4])
    W = knn_graph(X, 3)
    y = np.full(60, -1)
    y[[0, 1]] = [0, 1]
    result = propagate(W, y, 2, n_bootstrap=0)
    queue = review_queue(X, result, n_items=20, random_share=0.0)
    picked = {item.index % 30 for item in queue}
    assert len(picked) == len(queue)


def test_unreached_images_come_first():
    X = np.vstack([np.eye(3)[[0] * 5], np.eye(3)[[1] * 5]]) + np.random.default_rng(0).normal(0, 0.01, (10, 3))
    W = knn_graph(X, 3)
    y = np.array([0] + [-1] * 9)
    result = propagate(W, y, 1)
    assert np.sum(result.source == Source.NONE) == 5
    queue = review_queue(X, result, n_items=3, random_share=0.0, W=W)
    assert queue[0].rule == "no seed reached"


def test_flipped_human_label_is_suspect():
    X, truth = make_blobs(150, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=1.0, random_state=0)
    W = knn_graph(X, 8, metric="euclidean")
    y = np.full(150, -1)
    rng = np.random.default_rng(1)
    for c in range(3):
        y[rng.choice(np.flatnonzero(truth == c), 5, replace=False)] = c
    wrong = np.flatnonzero(y == 0)[0]
    y[wrong] = 2
    suspects = suspect_human_labels(W, y, 3, alpha=0.99)
    assert [s.index for s in suspects] == [wrong]
    assert suspects[0].human_label == 2
    assert suspects[0].neighbourhood_label == 0
    assert suspects[0].support > 0.9
    assert suspects[0].log_ratio > 0


def two_blobs(per_class: int = 6, distance: float = 8.0):
    """Two blobs of 100 (well separated by default), the first ``per_class`` points of each labeled with their
    blob."""
    X, truth = make_blobs(200, centers=[[0, 0], [distance, 0]], cluster_std=1.0, random_state=0)
    W = knn_graph(X, 8, metric="euclidean")
    y = np.full(200, -1)
    for c in (0, 1):
        y[np.flatnonzero(truth == c)[:per_class]] = c
    return W, y, truth


def test_a_planted_wrong_label_in_two_blobs_is_the_only_suspect():
    W, y, truth = two_blobs()
    wrong = np.flatnonzero((truth == 0) & (y < 0))[0]
    y[wrong] = 1  # a point of the first blob labeled as the second
    suspects = suspect_human_labels(W, y, 2)
    assert [s.index for s in suspects] == [wrong]
    assert (suspects[0].human_label, suspects[0].neighbourhood_label) == (1, 0)
    # Its own class reaches it with less than one seed's even share (13 seeds): the log-ratio's floor, 1/13.
    assert suspects[0].log_ratio == pytest.approx(np.log(suspects[0].support * 13))


def test_a_label_nothing_of_its_class_reaches_is_a_suspect_at_three_labels_per_class():
    # Three labels per blob, one of each wrong: six log-ratios, two of them high, too few for the fence (Q3 + 1.5 IQR
    # lies above both). Each wrong label gets all the mass of the other class and none of its own: flagged.
    W, y, _ = two_blobs(per_class=3)
    wrong = [np.flatnonzero(y == 0)[0], np.flatnonzero(y == 1)[0]]
    y[wrong] = [1, 0]
    seeds, _, _, log_ratio = suspect_log_ratios(W, y, 2)
    q1, q3 = np.percentile(log_ratio, [25, 75])
    assert np.all(log_ratio < q3 + 1.5 * (q3 - q1))
    assert np.sum(log_ratio > 0) == 3  # a right label that loses narrowly too: not a suspect
    suspects = suspect_human_labels(W, y, 2)
    assert sorted(s.index for s in suspects) == sorted(wrong)
    assert all(s.support == pytest.approx(1.0) and s.log_ratio == pytest.approx(np.log(6)) for s in suspects)


def test_right_labels_raise_no_suspect():
    W, y, _ = two_blobs()
    assert suspect_human_labels(W, y, 2) == []


def test_a_class_with_one_label_has_no_suspect():
    # With one label per class no seed gets mass of its own class: every one would lose, none is contradicted.
    W, y, _ = two_blobs(per_class=1, distance=3.0)  # blobs that touch: each seed reaches the other
    assert suspect_human_labels(W, y, 2) == []
    assert np.all(np.isnan(suspect_log_ratios(W, y, 2)[3]))


def test_suspects_come_strongest_first():
    # Three separated blobs, six labels each; two points of blob 0 labeled 2 (each has the other's support) and
    # one point of blob 2 labeled 1, which nothing of class 1 reaches: the strongest contradiction.
    X, truth = make_blobs(300, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=1.0, random_state=0)
    W = knn_graph(X, 8, metric="euclidean")
    y = np.full(300, -1)
    for c in range(3):
        y[np.flatnonzero(truth == c)[:6]] = c
    pair = np.flatnonzero((truth == 0) & (y < 0))[:2]
    lone = np.flatnonzero((truth == 2) & (y < 0))[0]
    y[pair], y[lone] = 2, 1
    suspects = suspect_human_labels(W, y, 3)
    assert suspects[0].index == lone
    assert {s.index for s in suspects[1:]} == set(pair.tolist())
    ratios = [s.log_ratio for s in suspects]
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[0] == pytest.approx(np.log(21))  # full mass of class 2 over the floor, one seed's share of 21
    seeds, _, _, log_ratio = suspect_log_ratios(W, y, 3)
    assert ratios == pytest.approx([log_ratio[np.searchsorted(seeds, s.index)] for s in suspects])


def test_possible_new_class_flags_unseeded_cluster():
    X, truth = make_blobs(600, n_features=8, centers=3, random_state=0, cluster_std=2.0)
    W = knn_graph(X, 10, metric="euclidean")
    y = np.full(600, -1)
    for c in (0, 1):
        y[np.flatnonzero(truth == c)[0]] = c
    flagged = possible_new_class(W, y)
    assert flagged[truth == 2].mean() == 1.0
    assert flagged[truth != 2].sum() == 0


def test_isolated_is_tukeys_fence_on_the_distance_to_the_last_neighbour():
    # Nine rows: quartiles 1.2 and 2.5 whatever the last row's distance beyond 2.5, so the fence is 2.5 + 1.5 * 1.3.
    last = np.array([1.0, 1.0, 1.2, 1.4, 1.4, 1.6, 2.5, 2.6, 4.4])
    distances = np.column_stack([last / 2, last])
    assert isolated(distances).tolist() == [False] * 9
    distances[8, 1] = 4.5
    assert isolated(distances).tolist() == [False] * 8 + [True]
    assert isolated(distances, fence=3.0).tolist() == [False] * 9  # 2.5 + 3 * 1.3 = 6.4
    assert isolated(np.zeros((5, 0))).tolist() == [False] * 5


def test_isolated_images_are_possible_new_classes_with_the_knn_distances():
    # 300 points in three blobs and three far-off points, each alone: the graph hangs them on a blob.
    X, truth = make_blobs(300, n_features=4, centers=3, random_state=0, cluster_std=1.0)
    far = np.array([[40.0, 40, 40, 40], [-40, 40, -40, 40], [40, -40, 40, -40]])
    X = np.vstack([X, far])
    _, distances = knn_indices(X, 10, metric="euclidean")
    W = knn_graph(X, 10, metric="euclidean")
    y = np.full(303, -1)
    for c in range(3):
        y[np.flatnonzero(truth == c)[:3]] = c
    assert not possible_new_class(W, y).any()  # without the distances, as before: every point is reached
    flagged = possible_new_class(W, y, knn_distances=distances)
    assert flagged[300:].all()
    assert flagged[:300].sum() <= 15  # and a few blob edges
    y[300] = 0
    assert not possible_new_class(W, y, knn_distances=distances)[300]  # never a human label


def test_a_tight_far_group_smaller_than_k_is_isolated_and_few_blob_points_are():
    # Three blobs and a group of 5 near-identical points far from them (junk images that resemble each other): each
    # has its 4 fellows as nearest neighbours, but its 15th neighbour is in a blob, far away.
    X, _ = make_blobs(300, n_features=8, centers=3, random_state=0, cluster_std=1.0)
    rng = np.random.default_rng(0)
    group = 30.0 + rng.normal(0, 0.05, size=(5, 8))
    flagged = isolated(knn_indices(np.vstack([X, group]), 15, metric="euclidean")[1])
    assert flagged[300:].all()
    # Gaussian blobs have tails: the fence takes at most a few of their points (2 of 300 here), with the group or not.
    assert flagged[:300].sum() <= 6
    assert isolated(knn_indices(X, 15, metric="euclidean")[1]).sum() <= 6


def test_cold_start_one_per_cluster():
    centers = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5], [-5, 0, 0]])
    X, truth = make_blobs(400, centers=centers, cluster_std=0.5, random_state=0)
    picked = cold_start(X, 4, random_state=0)
    assert len(set(picked.tolist())) == 4
    assert sorted(truth[picked].tolist()) == [0, 1, 2, 3]
    assert cold_start(X[:2], 5).size == 2


def three_blobs():
    """Blobs of 300, 200 and 100 points on three axes: k-means with 3 clusters finds them, largest first."""
    centers = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5]])
    X, truth = make_blobs([300, 200, 100], centers=centers, cluster_std=0.5, random_state=0)
    return X, truth


def test_clusters_are_numbered_from_the_largest_with_a_typical_member_each():
    X, truth = three_blobs()
    found = clusters(X, 3, random_state=0)
    assert np.bincount(found.assignment).tolist() == [300, 200, 100]
    assert truth[found.typical].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(found.assignment[found.typical], [0, 1, 2])
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    for c in range(3):  # k-means' centre is its members' mean: the typical image is the member nearest to it
        members = np.flatnonzero(found.assignment == c)
        distance = np.linalg.norm(Z[members] - Z[members].mean(axis=0), axis=1)
        assert found.typical[c] == members[np.argmin(distance)]
    np.testing.assert_array_equal(cold_start(X, 3, random_state=0), found.typical)


def test_uncovered_typicals_skip_clusters_with_a_label_and_excluded_images():
    X, truth = three_blobs()
    found = clusters(X, 3, random_state=0)
    labeled = np.zeros(len(X), dtype=bool)
    assert uncovered_typicals(found, labeled, 5).tolist() == found.typical.tolist()
    labeled[np.flatnonzero(truth == 0)[7]] = True  # one label anywhere in the largest blob covers it
    assert uncovered_typicals(found, labeled, 5).tolist() == found.typical[1:].tolist()
    assert uncovered_typicals(found, labeled, 1).tolist() == [found.typical[1]]
    assert uncovered_typicals(found, labeled, 5, exclude=[found.typical[1]]).tolist() == [found.typical[2]]
    labeled[:] = True
    assert uncovered_typicals(found, labeled, 5).size == 0
    assert uncovered_typicals(found, np.zeros(100, dtype=bool), 5).size == 0  # another set of images


def test_suggested_queue_leads_with_unlabeled_clusters_then_the_review_queue():
    X, truth = three_blobs()
    W = knn_graph(X, 10)
    y = np.full(len(X), -1)
    y[np.flatnonzero(truth == 0)[:3]] = 0
    y[np.flatnonzero(truth == 1)[:3]] = 1  # the third blob has no label: its typical image comes first
    result = propagate(W, y, 2, n_bootstrap=0)
    found = clusters(X, 3, random_state=0)
    queue = suggested_queue(result, found, n_items=12, W=W, random_state=0)
    assert len(queue) == 12
    assert len({item.index for item in queue}) == 12
    assert queue[0].index == found.typical[2]
    assert queue[0].rule == "typical of an unlabeled cluster"
    assert sum(item.rule == "typical of an unlabeled cluster" for item in queue) == 1  # only one cluster uncovered
    assert all(y[item.index] < 0 for item in queue)
    rest = review_queue(None, result, n_items=11, exclude=np.array([found.typical[2]]), W=W, random_state=0)
    assert [item.index for item in queue[1:]] == [item.index for item in rest]
    plain = review_queue(None, result, n_items=12, W=W, random_state=0)
    assert suggested_queue(result, None, n_items=12, W=W, random_state=0) == plain
    stale = clusters(X[:100], 3, random_state=0)  # clusters of another set of images are not used
    assert suggested_queue(result, stale, n_items=12, W=W, random_state=0) == plain


def test_suggested_queue_offers_every_unlabeled_cluster_before_the_least_certain():
    X, _ = three_blobs()
    W = knn_graph(X, 10)
    y = np.full(len(X), -1)
    y[[0, 1]] = 0, 1
    result = propagate(W, y, 2, n_bootstrap=0)
    found = clusters(X, 40, random_state=0)  # many clusters, nearly all without a label
    uncovered = uncovered_typicals(found, y >= 0, 40)
    assert 36 <= uncovered.size <= 38  # two labels cover at most two of the 40
    for n in (1, 12, uncovered.size):
        queue = suggested_queue(result, found, n_items=n, W=W, random_state=0)
        assert [item.index for item in queue] == uncovered[:n].tolist()
    queue = suggested_queue(result, found, n_items=uncovered.size + 5, W=W, random_state=0)
    assert [item.rule for item in queue[uncovered.size:]] != ["typical of an unlabeled cluster"] * 5  # then the rest


def test_coverage_clusters_double_with_the_labels_between_a_floor_and_a_cap():
    assert MIN_COVERAGE_CLUSTERS == 48
    assert MAX_COVERAGE_CLUSTERS == 256
    # 2 * (labels + batch), up to the next power of two, at least 48, at most 256 and half the images.
    assert coverage_clusters(0, 10_000, 12) == 48  # 24
    assert coverage_clusters(4, 10_000, 12) == 48  # 32
    assert coverage_clusters(5, 10_000, 12) == 64  # 34
    assert coverage_clusters(20, 10_000, 12) == 64  # 64
    assert coverage_clusters(52, 10_000, 12) == 128  # 128
    assert coverage_clusters(53, 10_000, 12) == 256  # 130
    assert coverage_clusters(5_000, 10_000, 12) == 256
    assert coverage_clusters(53, 300, 12) == 150
    assert coverage_clusters(0, 1, 12) == 1


def test_clusters_of_wide_embeddings_run_on_their_principal_components():
    X, truth = make_blobs(n_samples=[300, 200, 100], n_features=300, random_state=0)  # wider than CLUSTER_DIMS
    found = clusters(X, 3, random_state=0)
    assert sorted(np.bincount(found.assignment).tolist()) == [100, 200, 300]
    for c in range(3):  # each cluster is one blob, numbered from the largest, its typical image inside it
        members = truth[found.assignment == c]
        assert np.all(members == members[0])
        assert truth[found.typical[c]] == members[0]
    assert [int(np.sum(found.assignment == c)) for c in range(3)] == [300, 200, 100]
