"""The input checks of ``_validation``: each against an independent definition, every error path."""

from __future__ import annotations

import fractions
import math

import numpy as np
import pytest
import torch

from linkage_gcn._validation import (
    as_generator,
    as_index,
    as_tensor,
    check_bool,
    check_features,
    check_generator,
    check_in_options,
    check_int,
    check_labels,
    check_nodes,
    check_real,
    check_same_length,
    check_scores,
    normalize_rows,
    resolve_device,
    to_like,
)

# ------------------------------------------------------------------ as_tensor, as_index, to_like


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int32, np.int64,
                                   np.uint8, np.bool_])  # fmt: skip
def test_as_tensor_keeps_values_and_dtype_of_numpy(dtype):
    a = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    t, was_numpy = as_tensor(a, name="x")
    assert was_numpy and isinstance(t, torch.Tensor)
    assert t.numpy().dtype == a.dtype
    np.testing.assert_array_equal(t.numpy(), a)


def test_as_tensor_shares_memory_only_when_safe():
    a = np.zeros(4)
    t, _ = as_tensor(a, name="x")
    t[0] = 1.0
    assert a[0] == 1.0  # a writeable contiguous array is shared
    ro = np.zeros(4)
    ro.setflags(write=False)
    t, _ = as_tensor(ro, name="x")
    t[0] = 1.0
    assert ro[0] == 0.0  # a read-only array is copied
    strided = np.zeros((4, 4))[:, ::2]
    t, _ = as_tensor(strided, name="x")
    assert t.is_contiguous() and t.shape == (4, 2)


def test_as_tensor_passes_tensors_through_and_casts():
    x = torch.arange(3)
    t, was_numpy = as_tensor(x, name="x")
    assert t is x and not was_numpy
    t, was_numpy = as_tensor([1, 2], name="x", dtype=torch.float32)
    assert was_numpy and t.dtype == torch.float32 and t.tolist() == [1.0, 2.0]
    assert as_tensor(x, name="x", dtype=torch.float64)[0].dtype == torch.float64


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (None, ValueError, "x is None; an array is needed"),
        ([object()], TypeError, "x must be numeric, got an array of Python objects"),
        (["a", "b"], TypeError, "x must be numeric, got dtype <U1"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), TypeError, "got dtype datetime64"),
        (np.ones(2, dtype=complex), TypeError, "x must be numeric, got dtype complex128"),
        ([[1, 2], [3]], TypeError, r"x must be array-like \(a rectangular array"),
    ],
)
def test_as_tensor_errors(value, error, match):
    with pytest.raises(error, match=match):
        as_tensor(value, name="x")


def test_as_index_refuses_every_non_integer_dtype():
    assert as_index(np.array([[1, 2]], dtype=np.int16), name="ids").dtype == torch.long
    assert as_index(torch.tensor([3], dtype=torch.uint8), name="ids").tolist() == [3]
    for bad in (np.array([0.0, 1.0]), torch.tensor([True]), torch.ones(1, dtype=torch.complex64)):
        with pytest.raises(ValueError, match="ids must hold integer node ids, got dtype"):
            as_index(bad, name="ids")
    with pytest.raises(ValueError, match="ids is None"):
        as_index(None, name="ids")


def test_to_like():
    t = torch.arange(3)
    assert to_like(t, False) is t
    out = to_like(t.float().requires_grad_(), True)
    assert isinstance(out, np.ndarray) and out.tolist() == [0.0, 1.0, 2.0]


# ------------------------------------------------------------------ check_features


@pytest.mark.parametrize(
    ("dtype", "want"),
    [(np.float64, torch.float64), (np.float32, torch.float32), (np.float16, torch.float32),
     (np.int64, torch.float32), (np.uint8, torch.float32), (np.bool_, torch.float32)],
)  # fmt: skip
def test_check_features_dtype_rule(dtype, want):
    X = np.array([[1, 0], [0, 1], [1, 1]]).astype(dtype)
    t, was_numpy = check_features(X)
    assert was_numpy and t.dtype == want
    np.testing.assert_array_equal(t.numpy(), X.astype(np.float64))
    assert check_features(X, dtype=torch.float64)[0].dtype == torch.float64


def test_check_features_tensor_stays_a_tensor():
    x = torch.ones(3, 2, dtype=torch.float64)
    t, was_numpy = check_features(x, min_samples=3)
    assert not was_numpy and t.dtype == torch.float64


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "match"),
    [
        (np.zeros(3), {}, ValueError, r"X must be a 2-D array .* got 1-D shape \(3,\)"),
        (np.zeros((2, 2, 2)), {}, ValueError, "got 3-D shape"),
        (np.zeros((3, 0)), {}, ValueError, r"X has 0 features \(shape \(3, 0\)\)"),
        (np.zeros((0, 3)), {}, ValueError, r"X has 0 sample\(s\) but at least 1 are needed"),
        (np.zeros((2, 3)), {"min_samples": 3}, ValueError, "X has 2 sample.* at least 3"),
        ([[0.0, np.nan], [np.inf, 1.0], [0.0, 0.0]], {}, ValueError,
         r"X contains NaN or infinity \(2 non-finite value\(s\) in 2 row\(s\)\)"),
        (torch.ones(2, 2, dtype=torch.complex64), {}, TypeError, "X must hold real numbers"),
        (np.ones((2, 2), dtype=complex), {}, TypeError, "X must be numeric"),
        (None, {"name": "feats"}, ValueError, "feats is None"),
        ([["a", "b"]], {}, TypeError, "X must be numeric"),
    ],
)  # fmt: skip
def test_check_features_errors(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_features(X, **kwargs)


# ------------------------------------------------------------------ check_labels


def _codes(values):
    """Independent encoding: the rank of each value among the sorted distinct values."""
    order = sorted(set(values))
    return [order.index(v) for v in values]


@pytest.mark.parametrize(
    "labels",
    [[3, 1, 3, -2], np.array([3, 1, 3, -2], dtype=np.int8), np.array([[3], [1], [3], [-2]]),
     torch.tensor([3.0, 1.0, 3.0, -2.0]), np.array([3, 1, 3, -2], dtype=np.float32)],
)  # fmt: skip
def test_check_labels_numeric_forms(labels):
    out = check_labels(labels)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    assert out.tolist() == [3, 1, 3, -2]
    t = check_labels(labels, return_tensor=True)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.long and t.tolist() == [3, 1, 3, -2]


@pytest.mark.parametrize(
    "labels",
    [["bob", "al", "bob", "cy"], np.array(["bob", "al", "bob", "cy"], dtype=object),
     [True, False, True, True], torch.tensor([True, False, True, True]),
     np.array([True, False, True, True]), [2.5, 1.0, 2.5, 7.0]],
)  # fmt: skip
def test_check_labels_encode_against_sorted_ranks(labels):
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    if isinstance(labels, list) and isinstance(labels[0], float):
        with pytest.raises(ValueError, match="non-integer floats"):
            check_labels(labels, encode=True)  # floats are numbers, never encoded
        return
    assert check_labels(labels, encode=True).tolist() == _codes(values)
    t = check_labels(labels, encode=True, return_tensor=True)
    assert t.dtype == torch.long and t.tolist() == _codes(values)


def test_check_labels_all_true_tensor_encodes_like_numpy():
    """One path for booleans: a tensor of booleans encodes as the same numpy array would."""
    for values in ([True, True], [False, True], [False]):
        np.testing.assert_array_equal(
            check_labels(torch.tensor(values), encode=True),
            check_labels(np.array(values), encode=True),
        )


@pytest.mark.parametrize(
    ("labels", "kwargs", "error", "match"),
    [
        (None, {}, ValueError, r"labels is None; identity labels of shape \(N,\) are needed"),
        ([0, 1], {"n_samples": 3}, ValueError, "labels has 2 entries but 3 samples were given"),
        (np.zeros((3, 2)), {}, ValueError, r"labels must have shape \(N,\) or \(N, 1\), got"),
        (5, {}, ValueError, r"got shape \(\)"),
        ([[1, 2], [3]], {}, ValueError, "labels must be a flat sequence of identity labels"),
        ([0.5, 1.0], {}, ValueError, r"non-integer floats such as 0.5 \(1 of them"),
        ([1.0, np.nan], {}, ValueError, "labels contains NaN or infinity"),
        (torch.tensor([1.0, math.inf]), {}, ValueError, "labels contains NaN or infinity"),
        ([1e30, 1.0], {}, ValueError, "labels holds ids too large for int64"),
        (np.array([2**64 - 1], dtype=np.uint64), {}, ValueError, "too large for int64"),
        (["a", "b"], {}, ValueError, "labels must hold integer identities, got dtype <U1"),
        ([True, False], {}, ValueError, "labels must hold integer identities, got dtype bool"),
        (torch.tensor([True]), {}, ValueError, "got dtype torch.bool"),
        (np.array([1j, 2]), {}, TypeError, "labels must hold integer identities, got complex"),
        (torch.ones(2, dtype=torch.complex64), {}, TypeError, "got complex dtype"),
        ([1, None], {"encode": True}, ValueError, "labels mixes ids that cannot be compared"),
        (np.array(["a", 1], dtype=object), {"encode": True, "name": "y"}, ValueError,
         "y mixes ids"),
        ([0, -1, 2], {"allow_negative": False}, ValueError,
         r"labels holds negative identities \(1 of them, e.g. -1\)"),
    ],
)  # fmt: skip
def test_check_labels_errors(labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_labels(labels, **kwargs)


def test_check_labels_keeps_the_device_and_accepts_negative_by_default():
    y = check_labels(torch.tensor([[-1], [4]]), return_tensor=True)
    assert y.device.type == "cpu" and y.tolist() == [-1, 4]
    assert check_labels(np.array([], dtype=np.int64), allow_negative=False).shape == (0,)


# ------------------------------------------------------------------ check_scores


def test_check_scores_values_and_dtype():
    t = check_scores(np.array([[0.25], [1.0]], dtype=np.float32))
    assert t.dtype == torch.float32 and t.tolist() == [0.25, 1.0]
    t = check_scores([1, 0, 3])
    assert t.dtype == torch.float64 and t.tolist() == [1.0, 0.0, 3.0]
    assert check_scores([True, False]).tolist() == [1.0, 0.0]
    assert check_scores([], n_edges=0).shape == (0,)
    assert check_scores([-5.0, 2.0]).tolist() == [-5.0, 2.0]  # logits are fine
    assert check_scores([0.0, 1.0], unit_interval=True).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("scores", "kwargs", "error", "match"),
    [
        ([0.2, 0.4], {"n_edges": 3}, ValueError,
         r"scores must have shape \(E,\) = \(3,\), one score per edge of edge_index, got shape "
         r"\(2,\)"),
        (np.ones((2, 2)), {}, ValueError, r"scores must have shape \(E,\), got shape \(2, 2\)"),
        (0.5, {}, ValueError, r"got shape \(\)"),
        ([0.1, np.nan, np.nan], {}, ValueError, r"scores contains 2 NaN value\(s\)"),
        ([0.1, np.inf, -np.inf], {}, ValueError, r"scores contains 2 infinite value\(s\)"),
        ([1.5, -0.5, 0.5], {"unit_interval": True}, ValueError,
         r"scores must lie in \[0, 1\], got 2 value\(s\) outside it \(min -0.5, max 1.5\)"),
        (torch.ones(2, dtype=torch.complex64), {}, TypeError, "scores must be real numbers"),
        (["a"], {"name": "probs"}, TypeError, "probs must be numeric"),
        (None, {}, ValueError, "scores is None"),
    ],
)  # fmt: skip
def test_check_scores_errors(scores, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_scores(scores, **kwargs)


# ------------------------------------------------------------------ check_nodes


def test_check_nodes_mask_and_ids_against_numpy():
    rng = np.random.default_rng(0)
    mask = rng.random(20) < 0.4
    np.testing.assert_array_equal(check_nodes(torch.from_numpy(mask), 20).numpy(),
                                  np.flatnonzero(mask))  # fmt: skip
    np.testing.assert_array_equal(check_nodes(mask, 20).numpy(), np.flatnonzero(mask))
    ids = rng.integers(0, 20, size=(3, 4))
    np.testing.assert_array_equal(check_nodes(ids, 20).numpy(), ids.reshape(-1))  # flattened
    assert check_nodes([], 5).tolist() == []  # an empty list: no node
    assert check_nodes(torch.empty(0, dtype=torch.long), 5).tolist() == []


@pytest.mark.parametrize(
    ("nodes", "match"),
    [
        (torch.tensor([True, False]), r"input_nodes as a mask must have one entry per node \(4\)"),
        (torch.ones(2, 2, dtype=torch.bool), r"got shape \(2, 2\)"),
        ([1.0, 2.0], "input_nodes must be a boolean mask or integer node ids, got torch.float64"),
        (torch.empty(0), "got torch.float32"),  # an empty float tensor is still floats
        (torch.ones(1, dtype=torch.complex64), "got torch.complex64"),
        ([4, -1, 9], r"input_nodes holds 3 node id\(s\) outside \[0, 4\), e.g. 4"),
        (None, "input_nodes is None"),
    ],
)
def test_check_nodes_errors(nodes, match):
    with pytest.raises(ValueError, match=match):
        check_nodes(nodes, 4)
    with pytest.raises(ValueError, match=match.replace("input_nodes", "pivots")):
        check_nodes(nodes, 4, "pivots")


# ------------------------------------------------------------------ check_same_length


def test_check_same_length():
    assert check_same_length(a=np.zeros(3), b=[1, 2, 3], c=torch.zeros(3, 2)) == 3
    assert check_same_length() == 0
    with pytest.raises(ValueError, match="inputs must have the same length, got a: 3, b: 2"):
        check_same_length(a=np.zeros(3), b=[1, 2])
    with pytest.raises(TypeError, match="b must be an array with one entry per item, got int"):
        check_same_length(a=[1], b=3)
    with pytest.raises(TypeError, match=r"a must be an array .* got ndarray"):
        check_same_length(a=np.array(3))


# ------------------------------------------------------------------ scalars


@pytest.mark.parametrize("value", [0, 7, np.int64(7), np.uint8(7), -3])
def test_check_int_accepts_integers(value):
    out = check_int(value, "k")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (True, {}, "k must be an integer, got True"),
        (np.bool_(True), {}, "k must be an integer, got"),
        (3.0, {}, r"k must be an integer, got 3.0"),
        ("3", {}, "k must be an integer, got '3'"),
        (None, {}, "k must be an integer, got None"),
        (0, {"minimum": 1}, "k must be an integer >= 1, got 0"),
        (11, {"minimum": 1, "maximum": 10}, "k must be an integer <= 10, got 11"),
    ],
)
def test_check_int_errors(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_int(value, "k", **kwargs)


def test_check_int_bounds_are_inclusive():
    assert check_int(1, "k", minimum=1, maximum=1) == 1


def test_check_bool():
    assert check_bool(True, "f") is True
    assert check_bool(np.bool_(False), "f") is False
    for bad in (1, 0, "yes", None, np.array([True])):
        with pytest.raises(ValueError, match="f must be True or False, got"):
            check_bool(bad, "f")


@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.25), np.int64(3), fractions.Fraction(1, 4)])
def test_check_real_accepts_reals(value):
    out = check_real(value, "x")
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (True, {}, "x must be a finite number, got True"),
        ("1", {}, "x must be a finite number, got '1'"),
        (1j, {}, "x must be a finite number"),
        (math.nan, {}, "x must be a finite number, got nan"),
        (np.float32("inf"), {}, "x must be a finite number"),
        (10**400, {}, "x must be a finite number"),  # beyond the float range
        (-0.1, {"minimum": 0}, r"x must be a number in \[0, inf\], got -0.1"),
        (2, {"minimum": 0, "maximum": 1}, r"x must be a number in \[0, 1\], got 2"),
        (0, {"minimum": 0, "inclusive": False}, r"x must be a number in \(0, inf\), got 0"),
        (1, {"maximum": 1, "inclusive": False}, r"x must be a number in \(-inf, 1\), got 1"),
    ],
)
def test_check_real_errors(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_real(value, "x", **kwargs)


def test_check_in_options():
    assert check_in_options("l2", ("cosine", "l2"), "metric") == "l2"
    assert check_in_options("b", iter(["a", "b"]), "mode") == "b"  # any iterable
    for bad in ("L2", None, ["l2"], 2):
        with pytest.raises(ValueError, match=r"unknown metric .*; choose one of 'cosine', 'l2'"):
            check_in_options(bad, ("cosine", "l2"), "metric")


# ------------------------------------------------------------------ devices, random states


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    want = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == want and resolve_device(None) == want
    assert resolve_device() == want
    for bad in ("tpu", "", "cuda:x", object()):
        with pytest.raises(ValueError, match=r"unknown device .*; use 'auto', 'cpu', 'cuda'"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_resolve_device_without_cuda():
    for dev in ("cuda", "cuda:0", torch.device("cuda:1")):
        with pytest.raises(ValueError, match="was requested but CUDA is not available here"):
            resolve_device(dev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resolve_device_cuda_index_beyond_the_devices():
    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}") == torch.device(f"cuda:{n - 1}")
    with pytest.raises(ValueError, match=f"has {n} CUDA device"):
        resolve_device(f"cuda:{n}")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the no-MPS message")
def test_resolve_device_without_mps():
    with pytest.raises(ValueError, match="'mps' was requested but MPS is not available here"):
        resolve_device("mps")


def test_as_generator():
    a, b = as_generator(3), np.random.default_rng(3)
    assert a.random() == b.random()
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    r1, r2 = np.random.RandomState(4), np.random.RandomState(4)
    assert as_generator(r1).random() == as_generator(r2).random()
    assert isinstance(as_generator(None), np.random.Generator)
    assert as_generator(np.int64(2)).random() == np.random.default_rng(2).random()
    with pytest.raises(ValueError, match="seed must be None, an int, a numpy Generator"):
        as_generator(1.5, name="seed")
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        as_generator(True)
    with pytest.raises(ValueError, match="random_state must be a non-negative int seed, got -1"):
        as_generator(-1)


def test_normalize_rows_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    want = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(normalize_rows(torch.from_numpy(x), "unused").numpy(), want)
    bad = torch.from_numpy(x).clone()
    bad[[2, 4]] = 0.0
    with pytest.raises(ValueError, match=r"^X has 2 zero rows, the first 2\.$"):
        normalize_rows(bad, "X has {count} zero rows, the first {row}.")


def test_check_generator():
    g = torch.Generator()
    assert check_generator(g) is g and check_generator(None) is None
    want = r"rng must be a torch\.Generator or None, got Generator\.$"
    with pytest.raises(TypeError, match=want):
        check_generator(np.random.default_rng(0), "rng")  # numpy's: its class name, no seed hint
    with pytest.raises(TypeError, match=r"got bool\.$"):
        check_generator(True)
