import numpy as np
import pytest

from linkage_gcn.experiments import default_grid, describe_subsets, load_data, subset_name
from linkage_gcn.experiments.subsets import check_subset, check_subsets
from linkage_gcn.model_selection import make_imbalanced_subset


def test_subset_name():
    assert subset_name(10, 3) == "(H10, S3)"
    assert subset_name(np.int64(0), 1) == "(H0, S1)"


@pytest.mark.parametrize(
    ("subset", "match"),
    [
        (2, "pair"), ("10:3", "pair"), ((1, 2, 3), "pair"), (None, "pair"),
        ((-1, 2), "majority_count"), ((1, 0), "minority_size"), ((1.5, 2), "majority_count"),
    ],
)  # fmt: skip
def test_check_subset_rejects(subset, match):
    with pytest.raises(ValueError, match=match):
        check_subset(subset)


def test_check_subsets():
    assert check_subsets([[1, 2], (np.int64(3), 4)]) == [(1, 2), (3, 4)]
    for bad in ([], "10:3", 5):
        with pytest.raises(ValueError, match="subsets"):
            check_subsets(bad)


def test_describe_subsets_counts_what_the_subset_keeps():
    rng = np.random.default_rng(0)
    y = rng.zipf(1.6, size=400) % 50  # long-tailed identities
    sizes = np.sort(np.bincount(y))[::-1]
    for (m, n), got in zip([(3, 2), (10, 1)], describe_subsets(y, [(3, 2), (10, 1)])):
        counts = np.bincount(y[make_imbalanced_subset(y, m, n, random_state=0)])
        counts = counts[counts > 0]
        assert got == {
            "subset": subset_name(m, n), "n_samples": int(counts.sum()),
            "n_identities": len(counts), "n_majority_samples": int(sizes[:m].sum()),
            "n_identities_with_pairs": int((counts >= 2).sum()),
        }  # fmt: skip
    assert describe_subsets(y, [(10, 1)])[0]["n_identities_with_pairs"] == 10  # head only
    with pytest.raises(ValueError, match="majority_count"):
        describe_subsets(y, [(1000, 2)])


def test_lfw_subset_sizes_are_those_of_the_defaults_docstring(lfw_dir):
    sizes = describe_subsets(load_data("lfw", lfw_dir)["y_train"], default_grid("lfw")["subsets"])
    table = [tuple(s.values()) for s in sizes]
    assert table == [("(H10, S3)", 4983, 2998, 675, 876), ("(H40, S3)", 5667, 2998, 1449, 876)]
