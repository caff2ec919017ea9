"""The merge registry: each name clusters like the function it stands for."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from linkage_gcn.community import (
    INFOMAP_INSTALL_HINT,
    consensus_chinese_whispers,
    constrained_chinese_whispers,
    infomap,
)
from linkage_gcn.merge import constrained_components, propagate_labels, threshold_components
from linkage_gcn.merges import MERGES, Merge, resolve_merge


def scored_graph(seed=0):
    """Four groups of 3-9 nodes, strong links inside, weak and middling links across, and two
    nodes in no edge."""
    rng = np.random.default_rng(seed)
    sizes = [9, 6, 5, 3]
    y = np.repeat(np.arange(len(sizes)), sizes)
    n = y.size + 2
    i, j = np.triu_indices(y.size, 1)
    same = y[i] == y[j]
    keep = same | (rng.random(i.size) < 0.15)
    i, j, same = i[keep], j[keep], same[keep]
    scores = np.where(same, rng.uniform(0.55, 1.0, i.size), rng.uniform(0.0, 0.7, i.size))
    flip = rng.random(i.size) < 0.5
    edge_index = np.stack([np.where(flip, j, i), np.where(flip, i, j)])
    return edge_index, scores, n


def kept(edge_index, scores, threshold):
    keep = scores >= threshold
    return edge_index[:, keep], scores[keep]


def direct(name, edge_index, scores, n, threshold, *, runs, max_size, step, random_state):
    """What each registered merge stands for, called directly."""
    if name == "threshold":
        return threshold_components(edge_index, scores, n, threshold)
    if name == "chinese-whispers":
        e, s = kept(edge_index, scores, threshold)
        return consensus_chinese_whispers(e, s, n, n_runs=runs, random_state=random_state)
    if name == "infomap":
        e, s = kept(edge_index, scores, threshold)
        return infomap(e, s, n, num_trials=runs, random_state=random_state)
    if name == "propagation":
        return propagate_labels(edge_index, scores, n, max_size=max_size, step=step)
    raise AssertionError(f"no direct definition for the merge {name!r}: add one to this test")


@pytest.mark.parametrize("name", list(MERGES))
@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.8])
def test_each_merge_clusters_like_its_function(name, threshold):
    merge = MERGES[name]
    if not merge.available():
        pytest.skip(f"needs {merge.requires}")
    edge_index, scores, n = scored_graph()
    options = {"runs": 3, "max_size": 5, "step": 0.5, "random_state": 7}
    got = merge.cluster(edge_index, scores, n, threshold, **options)
    want = direct(name, edge_index, scores, n, threshold, **options)
    assert got.dtype == np.int64 and got.shape == (n,)
    np.testing.assert_array_equal(got, want)


def test_the_merges_differ_where_they_should():
    # the registry does not map two names to one function: on this graph they disagree
    edge_index, scores, n = scored_graph(1)
    options = {"runs": 3, "max_size": 4, "step": 0.5, "random_state": 0}
    labels = {
        name: tuple(merge.cluster(edge_index, scores, n, 0.3, **options))
        for name, merge in MERGES.items()
        if merge.available() and name != "infomap"
    }
    assert len(set(labels.values())) == len(labels)


def test_registry_entries_are_named_and_flagged():
    assert all(isinstance(m, Merge) and m.name == name for name, m in MERGES.items())
    assert [m.name for m in MERGES.values() if not m.uses_threshold] == ["propagation"]
    assert {m.name for m in MERGES.values() if m.randomised} == {"chinese-whispers", "infomap"}
    assert {m.name: m.requires for m in MERGES.values() if m.requires} == {"infomap": "infomap"}
    with pytest.raises(AttributeError):
        MERGES["threshold"].name = "other"  # frozen


@pytest.mark.parametrize("name", list(MERGES))
def test_flags_say_what_the_merge_does(name):
    merge = MERGES[name]
    if not merge.available():
        pytest.skip(f"needs {merge.requires}")
    edge_index, scores, n = scored_graph(2)
    run = lambda th, seed: merge.cluster(edge_index, scores, n, th, runs=3, random_state=seed)  # noqa: E731
    # deterministic given an int seed
    np.testing.assert_array_equal(run(0.5, 3), run(0.5, 3))
    if not merge.randomised:
        np.testing.assert_array_equal(run(0.5, 3), run(0.5, 4))
    singletons = np.arange(n)
    if merge.uses_threshold:  # a cut above every score leaves singletons only
        np.testing.assert_array_equal(run(1.5, 3), singletons)
    else:
        np.testing.assert_array_equal(run(1.5, 3), run(0.1, 3))
        assert run(1.5, 3).max() < n - 1


def named_graph():
    """A strong 6-clique (0-5) holding two names (0: name 7, 3: name 8), a triangle (6-8)
    whose node 6 also carries name 7, joined to the clique by a weak link."""
    clique = np.array(np.triu_indices(6, 1))
    tri = np.array([[6, 6, 7], [7, 8, 8]])
    edge_index = np.concatenate([clique, tri, [[5], [6]]], axis=1)
    scores = np.concatenate([np.full(clique.shape[1] + 3, 0.9), [0.2]])
    names = np.array([7, -1, -1, 8, -1, -1, 7, -1, -1])
    return edge_index, scores, 9, names


@pytest.mark.parametrize("name", list(MERGES))
def test_constrained_forms_keep_two_names_apart_and_one_name_together(name):
    merge = MERGES[name]
    edge_index, scores, n, names = named_graph()
    free = merge.constrained(edge_index, scores, n, 0.5, None, runs=3, random_state=0)
    assert free[0] == free[3]  # without names the clique is one cluster
    labels = merge.constrained(edge_index, scores, n, 0.5, names, runs=3, random_state=0)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    assert labels[0] != labels[3]  # cannot-link
    assert labels[0] == labels[6]  # must-link: one name, one person
    for c in np.unique(labels):
        assert len(set(names[(labels == c) & (names >= 0)].tolist())) <= 1
    if merge.native_constraints:  # its own constrained form, e.g. consensus whispers
        own = {"chinese-whispers": constrained_chinese_whispers}.get(name, constrained_components)
        kwargs = {"n_runs": 3, "random_state": 0} if name == "chinese-whispers" else {}
        np.testing.assert_array_equal(labels, own(edge_index, scores, n, 0.5, names, **kwargs))
    else:  # threshold components with names stand in
        np.testing.assert_array_equal(
            labels, constrained_components(edge_index, scores, n, 0.5, names)
        )


def _without(monkeypatch, package):
    """Make ``package`` look uninstalled to importlib.util.find_spec."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == package else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_check_available_names_the_package_and_how_to_install(monkeypatch):
    _without(monkeypatch, "infomap")
    merge = MERGES["infomap"]
    assert not merge.available()
    with pytest.raises(ValueError, match="merge='infomap' needs the optional 'infomap'") as err:
        merge.check_available()
    assert INFOMAP_INSTALL_HINT in str(err.value)
    assert "pip install 'linkage-gcn[infomap]'" in str(err.value)
    with pytest.raises(ValueError, match=r"^--merge='infomap' needs"):
        merge.check_available("--merge")
    with pytest.raises(ValueError, match="optional 'infomap' package"):
        resolve_merge("infomap")
    assert resolve_merge("infomap", check_available=False) is merge
    for name in ("threshold", "chinese-whispers", "propagation"):  # need nothing optional
        assert MERGES[name].available()
        assert resolve_merge(name) is MERGES[name]


def test_check_available_passes_when_installed(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: object())
    MERGES["infomap"].check_available()
    assert resolve_merge("infomap") is MERGES["infomap"]


@pytest.mark.parametrize("bad", ["louvain", "Threshold", "", None, 5, MERGES["threshold"]])
def test_resolve_merge_refuses_unknown_names_listing_the_choices(bad):
    with pytest.raises(ValueError) as err:
        resolve_merge(bad)
    message = str(err.value)
    assert message.startswith(f"unknown merge {bad!r}; choose one of ")
    assert message.endswith(", ".join(repr(m) for m in MERGES) + ".")
