import math

import numpy as np
import pytest
import torch

from linkage_gcn.losses import (
    LOSSES,
    ClassBalancedLoss,
    FocalLoss,
    class_balanced_loss,
    cross_entropy_loss,
    focal_loss,
    resolve_loss,
)

LOGITS = torch.tensor([[0.2, 1.5], [1.0, -0.5], [0.0, 0.3], [2.0, 0.1], [-1.0, 1.0]])
TARGET = torch.tensor([1, 0, 1, 0, 0])


def softmax_p(logits):
    """p(link) of every row, with the math module only."""
    e = [[math.exp(a), math.exp(b)] for a, b in logits.tolist()]
    return [(x[1] / (x[0] + x[1])) for x in e]


def hand_ce(logits=LOGITS, target=TARGET):
    p = softmax_p(logits)
    return [-math.log(pi) if y else -math.log(1 - pi) for pi, y in zip(p, target.tolist())]


def hand_focal(alpha, gamma, variant, logits=LOGITS, target=TARGET):
    """Per-pair focal loss of eq. 3 (standard) or of the fork's FocalLoss1 (2x, alpha on y=0)."""
    out = []
    for p, y in zip(softmax_p(logits), target.tolist()):
        pt = p if y else 1 - p
        if variant == "standard":
            w = alpha if y else 1 - alpha
            out.append(-w * (1 - pt) ** gamma * math.log(pt))
        else:
            w = 1 - alpha if y else alpha
            out.append(-2 * w * (1 - pt) ** gamma * math.log(pt))
    return out


def hand_focal_grad(alpha, gamma, variant, logits=LOGITS, target=TARGET):
    """Analytic d(mean focal)/d(logits) for (E, 2) logits.

    With p = p_t (softmax probability of the true class t, o the other class):
    dp/dz_t = p (1 - p), dp/dz_o = -p (1 - p).
    standard: L = -w (1-p)^g log p, dL/dp = -w [(1-p)^g / p - g (1-p)^(g-1) log p].
    fork:     L = -2 w c log p with c = (1-p)^g a constant, dL/dp = -2 w c / p.
    """
    rows = []
    n = len(target)
    for p_link, y in zip(softmax_p(logits), target.tolist()):
        p = p_link if y else 1 - p_link
        if variant == "standard":
            w = alpha if y else 1 - alpha
            dfac = gamma * (1 - p) ** (gamma - 1) if gamma else 0.0
            dl_dp = -w * ((1 - p) ** gamma / p - dfac * math.log(p))
        else:
            w = 1 - alpha if y else alpha
            dl_dp = -2 * w * (1 - p) ** gamma / p
        d_true = dl_dp * p * (1 - p) / n
        row = [0.0, 0.0]
        row[1 if y else 0] = d_true
        row[0 if y else 1] = -d_true
        rows.append(row)
    return rows


def test_cross_entropy_matches_hand_computation():
    assert cross_entropy_loss(LOGITS, TARGET).item() == pytest.approx(sum(hand_ce()) / 5)


def test_class_balanced_matches_eq2():
    ce = hand_ce()
    pos = [c for c, y in zip(ce, TARGET.tolist()) if y]
    neg = [c for c, y in zip(ce, TARGET.tolist()) if not y]
    expected = (sum(pos) / len(pos) + sum(neg) / len(neg)) / 2
    assert class_balanced_loss(LOGITS, TARGET).item() == pytest.approx(expected)
    assert ClassBalancedLoss()(LOGITS, TARGET).item() == pytest.approx(expected)
    # differs from the plain mean here (2 positives, 3 negatives)
    assert expected != pytest.approx(sum(ce) / 5)


def test_class_balanced_single_class_is_mean_of_present_class():
    only_neg = torch.zeros(5, dtype=torch.long)
    ce_neg = [-math.log(1 - p) for p in softmax_p(LOGITS)]
    assert class_balanced_loss(LOGITS, only_neg).item() == pytest.approx(sum(ce_neg) / 5)
    only_pos = torch.ones(5, dtype=torch.long)
    ce_pos = [-math.log(p) for p in softmax_p(LOGITS)]
    assert class_balanced_loss(LOGITS, only_pos).item() == pytest.approx(sum(ce_pos) / 5)


def test_class_balanced_per_graph():
    group = torch.tensor([0, 0, 1, 1, 1])
    ce = hand_ce()
    g0 = (ce[0] + ce[1]) / 2  # one positive, one negative
    g1 = (ce[2] + (ce[3] + ce[4]) / 2) / 2
    expected = (g0 + g1) / 2
    got = class_balanced_loss(LOGITS, TARGET, group)
    assert got.item() == pytest.approx(expected)
    assert ClassBalancedLoss(per_graph=True)(LOGITS, TARGET, group=group).item() == pytest.approx(
        expected
    )
    # a graph with one class contributes the mean of that class
    group = torch.tensor([0, 0, 1, 2, 2])
    g2 = (ce[3] + ce[4]) / 2
    assert class_balanced_loss(LOGITS, TARGET, group).item() == pytest.approx(
        ((ce[0] + ce[1]) / 2 + ce[2] + g2) / 3
    )
    # ids need not be contiguous: an empty subgraph id is skipped
    group = torch.tensor([0, 0, 4, 4, 4])
    assert class_balanced_loss(LOGITS, TARGET, group).item() == pytest.approx(expected)


def test_class_balanced_per_graph_on_random_batches():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 2, generator=gen)
    target = (torch.rand(300, generator=gen) < 0.2).long()
    group = torch.randint(0, 25, (300,), generator=gen)
    ce = hand_ce(logits, target)
    per_graph = []
    for g in range(25):
        parts = []
        for cls in (1, 0):
            vals = [
                c for c, t, gg in zip(ce, target.tolist(), group.tolist()) if gg == g and t == cls
            ]
            if vals:
                parts.append(sum(vals) / len(vals))
        if parts:
            per_graph.append(sum(parts) / len(parts))
    expected = sum(per_graph) / len(per_graph)
    assert class_balanced_loss(logits, target, group).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("variant", ["standard", "fork"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 0.0), (0.75, 1.0), (0.1, 3.5)])
def test_focal_matches_formula(alpha, gamma, variant):
    expected = hand_focal(alpha, gamma, variant)
    got = focal_loss(LOGITS, TARGET, alpha=alpha, gamma=gamma, reduction="none", variant=variant)
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    module = FocalLoss(alpha, gamma, variant=variant)
    assert module(LOGITS, TARGET).item() == pytest.approx(sum(expected) / 5, rel=1e-5)
    total = focal_loss(LOGITS, TARGET, alpha, gamma, "sum", variant=variant)
    assert total.item() == pytest.approx(sum(expected), rel=1e-5)


def test_fork_orientation_weighs_positives_by_one_minus_alpha():
    # a single positive at p = 0.5: standard 0.25 * 0.25 * log 2, fork 2 * 0.75 * 0.25 * log 2
    logits = torch.zeros(1, 2)
    one = torch.tensor([1])
    zero = torch.tensor([0])
    log2 = math.log(2)
    assert focal_loss(logits, one).item() == pytest.approx(0.25 * 0.25 * log2)
    assert focal_loss(logits, one, variant="fork").item() == pytest.approx(2 * 0.75 * 0.25 * log2)
    assert focal_loss(logits, zero).item() == pytest.approx(0.75 * 0.25 * log2)
    assert focal_loss(logits, zero, variant="fork").item() == pytest.approx(2 * 0.25 * 0.25 * log2)


@pytest.mark.parametrize("variant", ["standard", "fork"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.6, 1.0), (0.25, 0.0)])
def test_focal_gradients_match_analytic(alpha, gamma, variant):
    logits = LOGITS.clone().double().requires_grad_(True)
    focal_loss(logits, TARGET, alpha, gamma, variant=variant).backward()
    expected = np.array(hand_focal_grad(alpha, gamma, variant))
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_fork_gradient_differs_from_undetached_one():
    # the detached factor changes the gradient (gamma > 0), not the value
    a = LOGITS.clone().requires_grad_(True)
    b = LOGITS.clone().requires_grad_(True)
    fork = focal_loss(a, TARGET, variant="fork")
    fork.backward()
    y = TARGET.bool()
    logp = torch.log_softmax(b, 1)
    log_pt = torch.where(y, logp[:, 1], logp[:, 0])
    w = torch.where(y, 0.75, 0.25)
    undetached = (-2 * w * (1 - log_pt.exp()) ** 2 * log_pt).mean()
    undetached.backward()
    assert fork.item() == pytest.approx(undetached.item())
    assert not torch.allclose(a.grad, b.grad, atol=1e-4)


def test_focal_gamma_zero_half_alpha_is_half_ce():
    ce = cross_entropy_loss(LOGITS, TARGET)
    assert focal_loss(LOGITS, TARGET, alpha=0.5, gamma=0.0).item() == pytest.approx(ce.item() / 2)
    # the fork doubles it back: CE itself
    fork = focal_loss(LOGITS, TARGET, alpha=0.5, gamma=0.0, variant="fork")
    assert fork.item() == pytest.approx(ce.item())


def test_binary_logits_equal_two_column_logits():
    z = LOGITS[:, 1] - LOGITS[:, 0]  # the same probabilities as a single logit
    fork = lambda lg, t: focal_loss(lg, t, variant="fork")  # noqa: E731
    for fn in (cross_entropy_loss, class_balanced_loss, focal_loss, fork):
        assert fn(z, TARGET).item() == pytest.approx(fn(LOGITS, TARGET).item(), rel=1e-5)
        assert fn(z[:, None], TARGET).item() == pytest.approx(fn(LOGITS, TARGET).item(), rel=1e-5)


def test_target_kinds_give_the_same_loss():
    ref = focal_loss(LOGITS, TARGET, variant="fork").item()
    for target in (TARGET.bool(), TARGET.float(), TARGET[:, None], TARGET.tolist()):
        assert focal_loss(LOGITS, target, variant="fork").item() == pytest.approx(ref)
        assert class_balanced_loss(LOGITS, target).item() == pytest.approx(
            class_balanced_loss(LOGITS, TARGET).item()
        )


def test_resolve_loss_names():
    fork = resolve_loss("focal-fork")
    assert isinstance(fork, FocalLoss) and fork.variant == "fork"
    assert (fork.alpha, fork.gamma) == (0.25, 2.0)
    assert repr(fork) == "FocalLoss(alpha=0.25, gamma=2.0, variant='fork')"
    assert fork(LOGITS, TARGET).item() == pytest.approx(sum(hand_focal(0.25, 2.0, "fork")) / 5)
    standard = resolve_loss("focal")
    assert standard.variant == "standard" and repr(standard) == "FocalLoss(alpha=0.25, gamma=2.0)"
    assert repr(resolve_loss("cb-graph")) == "ClassBalancedLoss(per_graph=True)"
    assert set(LOSSES) == {"ce", "cb", "cb-graph", "focal", "focal-fork"}
    custom = lambda logits, target: logits.sum()  # noqa: E731
    assert resolve_loss(custom) is custom


def test_gradients_flow_for_every_named_loss():
    for name in LOSSES:
        logits = LOGITS.clone().requires_grad_(True)
        resolve_loss(name)(logits, TARGET).backward()
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "fn", [cross_entropy_loss, class_balanced_loss, focal_loss, FocalLoss(variant="fork")]
)
def test_bad_inputs_are_clear_errors(fn):
    with pytest.raises(ValueError, match=r"logits must have shape \(E, 2\) or \(E,\)"):
        fn(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="target has 2 entries but logits has 3 rows"):
        fn(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must have shape \(E,\)"):
        fn(torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must hold 0 .* or 1 .* e\.g\. 0\.5"):
        fn(torch.zeros(3, 2), torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"target must hold 0 .* or 1 .* 2 other value.*e\.g\. 2"):
        fn(torch.zeros(3, 2), torch.tensor([2, 1, -1]))
    with pytest.raises(ValueError, match=r"logits contains NaN or infinity \(2 non-finite"):
        fn(torch.tensor([[0.0, float("nan")], [0.0, float("inf")], [0.0, 0.0]]), TARGET[:3])
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        fn(torch.zeros(3, 2, dtype=torch.long), TARGET[:3])
    with pytest.raises(TypeError, match=r"logits must be a torch\.Tensor"):
        fn(np.zeros((3, 2)), TARGET[:3])


def test_bad_group_is_a_clear_error():
    with pytest.raises(ValueError, match=r"group must have shape \(5,\)"):
        class_balanced_loss(LOGITS, TARGET, torch.tensor([0, 0, 1]))
    with pytest.raises(TypeError, match="group must hold integer subgraph ids"):
        class_balanced_loss(LOGITS, TARGET, torch.tensor([0.0, 0.5, 1.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="group must hold integer subgraph ids"):
        ClassBalancedLoss(per_graph=True)(LOGITS, TARGET, group=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-negative subgraph ids, got -1"):
        class_balanced_loss(LOGITS, TARGET, torch.tensor([0, 0, -1, 1, 1]))


def test_bad_parameters_are_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        FocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(LOGITS, TARGET, gamma=-1.0)
    with pytest.raises(
        ValueError, match="unknown variant 'paper'; choose one of 'standard', 'fork'"
    ):
        FocalLoss(variant="paper")
    with pytest.raises(ValueError, match="unknown variant"):
        focal_loss(LOGITS, TARGET, variant="Fork")
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'focal-fork'"):
        resolve_loss("hinge")
    with pytest.raises(ValueError, match="callable"):
        resolve_loss(3)


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [(None, ValueError, "target is None"), (["a", "b"], TypeError, "target must be numeric"),
     ([[0, 1], [1, 0]], ValueError, r"target must have shape \(E,\)"),
     (np.array([0, 1]), None, None), ([[1], [0]], None, None)],
)  # fmt: skip
def test_targets_of_every_kind_are_read_or_refused_by_name(target, error, match):
    logits = torch.zeros(2, 2)
    if error is None:
        want = cross_entropy_loss(logits, torch.tensor([0, 1]))
        torch.testing.assert_close(cross_entropy_loss(logits, target), want)
        return
    with pytest.raises(error, match=match):
        cross_entropy_loss(logits, target)


def test_groups_of_every_kind_are_read_or_refused_by_name():
    logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    with pytest.raises(TypeError, match="group must be numeric"):
        class_balanced_loss(logits, target, group=["a", "b"])
    with pytest.raises(TypeError, match="group must hold integer subgraph ids"):
        class_balanced_loss(logits, target, group=[0.0, 1.0])
    want = class_balanced_loss(logits, target, group=torch.tensor([0, 1]))
    torch.testing.assert_close(class_balanced_loss(logits, target, group=[[0], [1]]), want)
