"""int8 graph convolutions for CPU link scoring (``precision="int8"``).

On CPUs without native bfloat16 (AVX2: most laptops, desktops and cloud
instances), 8-bit integer products are the fast reduced-precision arithmetic:
oneDNN's ``u8 x s8`` kernels run 1.7-1.9x the fp32 GFLOP/s of the same matrix
product. :class:`Int8Sage` packs a mean-aggregation ``SAGEConv`` once (weights
quantised per output channel, symmetric int8, ``lin_l`` and ``lin_r`` stacked) and
applies it as one int8 product: on all rows, of the layer's input ``h`` by
``[W_l; W_r]``, after which the ``W_l h`` half is aggregated (a mean over
neighbours in the output width, not the input width); on a few rows (the last layer,
read at the 1-hop nodes only), of ``[mean_j h_j, h]`` by ``[W_l, W_r]``. Its inputs
are quantised on the fly (dynamic, one scale per row). The inputs of every layer after
the first are ReLU outputs and their means, so they are non-negative: they are coded
on 7 bits (0 to 127) of an unsigned byte, as fbgemm's ``reduce_range`` does, because
AVX2's ``vpmaddubsw`` adds pairs of ``u8 x s8`` products in saturating 16-bit
integers (with 8 bits, ``2 x 255 x 127`` overflows: on this AVX2 CPU without VNNI
the relative error of a random 512 -> 256 layer grew from 0.5 % to 8 %). The kernel
returns fp32; each row is then rescaled, biased and rectified.

The kernel is ``torch.ops.onednn.qlinear_pointwise`` (the one PyTorch's own x86
int8 inference uses); :func:`int8_support` probes it once and says why when it is
missing (a torch build without oneDNN, an older signature).
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np
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
            f"{device.type} use 'bf16' or 'tf32', or compute on device='cpu'."
        )
    reason = int8_support()
    if reason is not None:
        raise RuntimeError(f"precision='int8' is not available: {reason}. Use 'fp32'.")


class Int8Sage:
    """A packed mean-aggregation ``SAGEConv`` followed by ReLU, in int8 arithmetic.

    ``ReLU(lin_l(mean_j x_j) + lin_r(x))`` with the weights quantised per output
    channel to int8 and the input (non-negative) quantised per call to 7-bit
    unsigned integers, one scale per row (its largest input / 127); the kernel
    adds no bias, the rows are rescaled, biased and rectified after it.
    On all rows it projects, then aggregates; on some rows it aggregates, then
    projects. Approximate: outputs move by about 0.5 % of their scale (relative
    error); the link probabilities of the shipped model on LFW by 3e-4 on average.

    Parameters
    ----------
    conv : torch_geometric.nn.SAGEConv
        A mean-aggregation convolution (its weights are read once, here).

    Examples
    --------
    Each node aggregating itself (``A = I``), against PyG's ``SAGEConv``:

    >>> _ = torch.manual_seed(0)
    >>> conv = SAGEConv(64, 32)
    >>> x = torch.rand(50, 64)
    >>> adj = torch.eye(50).to_sparse_csr()
    >>> with torch.no_grad():
    ...     exact = torch.relu(conv(x, torch.arange(50).repeat(2, 1)))
    >>> if int8_support() is None:  # this torch build has the kernel
    ...     approx = Int8Sage(conv)(x.clone(), adj)
    ...     print(bool((approx - exact).norm() < 0.02 * exact.norm()))
    ... else:
    ...     print(True)
    True
    """

    def __init__(self, conv: SAGEConv) -> None:
        with torch.no_grad():
            self.w_l = conv.lin_l.weight.detach().float().cpu()
            self.w_r = conv.lin_r.weight.detach().float().cpu()
            self.bias = conv.lin_l.bias.detach().float().cpu()
        self.in_channels = conv.in_channels
        self.out_channels = conv.out_channels

    # all rows: project [lin_l; lin_r] first, then aggregate the lin_l half (out channels,
    # not in); some rows: aggregate first, one product of [mean, x]. Each packed when used.
    @functools.cached_property
    def by_output(self) -> tuple[Tensor, Tensor, Tensor]:
        return _pack(torch.cat([self.w_l, self.w_r], 0))

    @functools.cached_property
    def by_input(self) -> tuple[Tensor, Tensor, Tensor]:
        return _pack(torch.cat([self.w_l, self.w_r], 1))

    @torch.no_grad()
    def __call__(self, x: Tensor, adj: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        """The layer's output on all rows of ``x``, or on ``rows`` only.

        ``adj`` is the CSR ``D^-1 A``: ``(V, V)``, or its ``(R, V)`` rows ``rows``
        when they are given. ``x`` must be non-negative (a ReLU output); it may be
        overwritten. A NaN or infinite input makes its row's output NaN, and the
        outputs of the rows that aggregate it.
        """
        if rows is None:
            scale, q = _quantize([x])
            p = _int8_mm(q, self.by_output).mul_(scale.unsqueeze(1))
            out = self.out_channels
            h = torch.sparse.addmm(p[:, out:], adj, p[:, :out])
            return h.add_(self.bias).relu_()
        agg = torch.sparse.mm(adj, x)
        scale, q = _quantize([agg, x.index_select(0, rows)])
        return torch.addcmul(self.bias, _int8_mm(q, self.by_input), scale.unsqueeze(1)).relu_()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


def _pack(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The packed int8 weights of ``w`` for oneDNN (per output channel), scales, zero points."""
    scale = w.abs().amax(1).clamp_min(1e-12) / 127
    w_q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return torch.ops.onednn.qlinear_prepack(w_q, None), scale, torch.zeros_like(scale).long()


def _quantize(parts: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Row scales and the 7-bit codes of the columns of ``parts`` side by side.

    The parts (non-negative, same rows) are overwritten. One scale per row, its largest
    value over all parts / 127.
    """
    top = parts[0].amax(1)
    for part in parts[1:]:
        top = torch.maximum(top, part.amax(1))
    scale = top.clamp_min_(1e-30).div_(127)
    inv = scale.reciprocal().unsqueeze(1)
    q = torch.empty(top.shape[0], sum(p.shape[1] for p in parts), dtype=torch.uint8)
    codes, col = q.numpy(), 0
    with np.errstate(invalid="ignore"):  # NaN rows: their NaN scale makes the output NaN
        for part in parts:
            # + 0.5 then truncation rounds these non-negative values; numpy's cast is
            # several times faster than torch's float -> uint8 copy
            part = part.mul_(inv).add_(0.5).numpy()
            np.copyto(codes[:, col : col + part.shape[1]], part, casting="unsafe")
            col += part.shape[1]
    return scale, q


def _int8_mm(q: Tensor, packed: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """``q @ W^T`` in fp32 (``q`` unscaled codes; ``W`` dequantised)."""
    w, w_scale, w_zero = packed
    return torch.ops.onednn.qlinear_pointwise(
        q, 1.0, 0, w, w_scale, w_zero, None, 1.0, 0, torch.float32, "none", [None], ""
    )
