"""int8 graph convolutions for CPU link scoring (``precision="int8"``).

On CPUs without native bfloat16 (AVX2: most laptops, desktops and cloud
instances), 8-bit integer products are the fast reduced-precision arithmetic:
oneDNN's ``u8 x s8`` kernels run 1.6-1.8x the fp32 GFLOP/s of the same matrix
product. :class:`Int8Sage` packs a mean-aggregation ``SAGEConv`` once (weights
quantised per output channel, symmetric int8, ``lin_l`` and ``lin_r`` stacked into
one ``(out, 2 in)`` matrix) and applies it as one int8 product of ``[mean_j x_j, x]``,
quantised on the fly (dynamic, per call) to unsigned 8 bits: the inputs of every
layer after the first are ReLU outputs and their means, so they are non-negative
and all 256 levels carry information. Bias and ReLU are fused into the kernel,
which returns fp32.

The kernel is ``torch.ops.onednn.qlinear_pointwise`` (the one PyTorch's own x86
int8 inference uses); :func:`int8_support` probes it once and says why when it is
missing (a torch build without oneDNN, an older signature).
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.nn import SAGEConv

__all__ = ["Int8Sage", "check_int8", "int8_support"]


@functools.cache
def int8_support() -> Optional[str]:
    """``None`` when int8 scoring runs in this torch build, else the reason it does not.

    Examples
    --------
    >>> int8_support() is None or isinstance(int8_support(), str)
    True
    """
    try:
        op = torch.ops.onednn.qlinear_pointwise
        packed = torch.ops.onednn.qlinear_prepack(torch.ones(4, 8, dtype=torch.int8), None)
        out = op(
            torch.full((2, 8), 2, dtype=torch.uint8), 0.5, 0, packed, torch.ones(4),
            torch.zeros(4, dtype=torch.long), torch.zeros(4), 1.0, 0, torch.float32,
            "relu", [None], "",
        )  # fmt: skip
    except (AttributeError, RuntimeError, TypeError) as err:
        return (
            f"this torch build ({torch.__version__}) has no usable oneDNN int8 linear kernel "
            f"({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        )
    if not torch.equal(out, torch.full((2, 4), 8.0)):  # 8 inputs x 2 x 0.5 x 1
        return f"the oneDNN int8 linear kernel of torch {torch.__version__} gives wrong results"
    return None


def check_int8(device: torch.device) -> None:
    """Raise a clear error unless ``precision="int8"`` can run on ``device``.

    Examples
    --------
    >>> check_int8(torch.device("cuda"))
    Traceback (most recent call last):
    ...
    ValueError: precision='int8' runs on the CPU only (oneDNN int8 kernels); on cuda use ...
    """
    device = torch.device(device)
    if device.type != "cpu":
        raise ValueError(
            "precision='int8' runs on the CPU only (oneDNN int8 kernels); on "
            f"{device.type} use 'bf16' or 'tf32'."
        )
    reason = int8_support()
    if reason is not None:
        raise RuntimeError(f"precision='int8' is not available: {reason}. Use 'fp32'.")


class Int8Sage:
    """A packed mean-aggregation ``SAGEConv`` followed by ReLU, in int8 arithmetic.

    ``ReLU(lin_l(mean_j x_j) + lin_r(x))`` with the weights quantised per output
    channel to int8 and the input (non-negative) quantised per call to uint8 with
    one scale, ``max(x) / 255``. Approximate: outputs move by about 1 % of their
    scale; link probabilities of a trained model by about 1e-3.

    Parameters
    ----------
    conv : torch_geometric.nn.SAGEConv
        A mean-aggregation convolution (its weights are read once, here).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> conv = SAGEConv(16, 8)
    >>> x = torch.rand(5, 16)
    >>> adj = torch.eye(5).to_sparse_csr()
    >>> exact = torch.relu(conv(x, torch.arange(5).repeat(2, 1)))
    >>> if int8_support() is None:
    ...     approx = Int8Sage(conv)(x, adj)
    ...     print(bool((approx - exact).abs().max() < 0.05 * exact.abs().max()))
    ... else:
    ...     print(True)
    True
    """

    def __init__(self, conv: SAGEConv) -> None:
        with torch.no_grad():
            w = torch.cat([conv.lin_l.weight, conv.lin_r.weight], 1).float().cpu()
            scale = w.abs().amax(1).clamp_min(1e-12) / 127
            w_q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
            bias = conv.lin_l.bias.detach().float().cpu()
        self.packed = torch.ops.onednn.qlinear_prepack(w_q, None)
        self.w_scale = scale
        self.w_zero = torch.zeros(w.shape[0], dtype=torch.long)
        self.bias = bias
        self.in_channels = conv.in_channels
        self.out_channels = conv.out_channels

    def __call__(self, x: Tensor, adj: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        """The layer's output on all rows of ``x`` (or on ``rows``); ``adj`` is the CSR ``D^-1 A``.

        ``x`` must be non-negative (a ReLU output); it may be overwritten.
        """
        agg = torch.sparse.mm(adj, x)
        if rows is not None:
            agg, x = agg.index_select(0, rows), x.index_select(0, rows)
        # one scale for both halves: on all rows the means never exceed the maximum
        top = float(x.max()) if x.numel() else 0.0
        if rows is not None and x.numel():
            top = max(top, float(agg.max()))
        if not math.isfinite(top):  # keep NaN visible: uint8 has no NaN
            return torch.full((x.shape[0], self.out_channels), float("nan"))
        scale = top / 255 if top > 0 else 1.0
        inv = 1.0 / scale
        q = torch.empty(x.shape[0], 2 * x.shape[1], dtype=torch.uint8)
        q[:, : x.shape[1]].copy_(agg.mul_(inv).round_())
        q[:, x.shape[1] :].copy_(x.mul_(inv).round_())
        return torch.ops.onednn.qlinear_pointwise(
            q, scale, 0, self.packed, self.w_scale, self.w_zero, self.bias, 1.0, 0,
            torch.float32, "relu", [None], "",
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
