import numpy as np
import pytest
import torch

from linkage_gcn.preprocessing import (
    EmbeddingPreprocessor,
    apply_preprocessing,
    fit_preprocessing,
)


def test_center_l2_matches_numpy_definition(rng):
    X = rng.normal(size=(50, 8)) + 3.0
    Z = rng.normal(size=(7, 8))
    pre = EmbeddingPreprocessor("center-l2").fit(X)
    expected = (Z - X.mean(0)) / np.linalg.norm(Z - X.mean(0), axis=1, keepdims=True)
    np.testing.assert_allclose(pre.transform(Z), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pre.mean_, X.mean(0), rtol=1e-5)


def test_l2_and_none(rng):
    X = rng.normal(size=(10, 4)).astype(np.float32)
    out = EmbeddingPreprocessor("l2").fit(X).transform(X)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out * np.linalg.norm(X, axis=1, keepdims=True), X, rtol=1e-5)
    np.testing.assert_array_equal(EmbeddingPreprocessor().fit(X).transform(X), X)
    assert EmbeddingPreprocessor("l2").fit(X).mean_ is None


def test_tensor_stays_tensor():
    x = torch.tensor([[3.0, 4.0]])
    out = EmbeddingPreprocessor("l2").fit(x).transform(x)
    assert isinstance(out, torch.Tensor)
    assert torch.allclose(out, torch.tensor([[0.6, 0.8]]))


def test_errors():
    with pytest.raises(ValueError, match="preprocessing"):
        fit_preprocessing(torch.ones(2, 2), "zscore")
    with pytest.raises(ValueError, match="zero norm"):
        apply_preprocessing(torch.zeros(1, 3), "l2")
    with pytest.raises(ValueError, match="fitted mean"):
        apply_preprocessing(torch.ones(1, 3), "center-l2", torch.ones(2))
    pre = EmbeddingPreprocessor("l2").fit(np.ones((2, 3)))
    with pytest.raises(ValueError, match="3"):
        pre.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        pre.transform(np.array([[np.nan, 1.0, 1.0]]))


def test_fitted_mean_is_checked_before_use():
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="fitted mean of center-l2 preprocessing holds NaN"):
        apply_preprocessing(x, "center-l2", torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="holds NaN or infinity"):
        apply_preprocessing(x, "center-l2", np.array([0.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match=r"fitted mean of shape \(3,\), got none"):
        apply_preprocessing(x, "center-l2")
    # a numpy mean is as good as a tensor
    out = apply_preprocessing(torch.tensor([[1.0, 2.0, 2.0]]), "center-l2", np.zeros(3))
    assert torch.allclose(out, torch.tensor([[1 / 3, 2 / 3, 2 / 3]]))
    pre = EmbeddingPreprocessor("center-l2").fit(np.eye(3))
    pre.mean_ = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="holds NaN"):
        pre.transform(np.eye(3))


def test_zero_rows_are_counted_and_the_first_named():
    x = torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"2 row\(s\) have zero norm after 'l2' preprocessing "
                       r"\(first: row 1\)"):  # fmt: skip
        apply_preprocessing(x, "l2")
    mean = torch.tensor([2.0, 0.0])  # row 2 equals the mean
    with pytest.raises(ValueError, match=r"1 row\(s\) .* 'center-l2' .*first: row 2"):
        apply_preprocessing(torch.tensor([[1.0, 1.0], [3.0, 1.0], [2.0, 0.0]]), "center-l2", mean)
