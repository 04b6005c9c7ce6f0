"""Symbolic derivations in the founding document's notation (``convprop explain``): the public face.

:func:`explain` builds a :class:`Derivation` for any shape and operation: the model
(:class:`.model.DerivationModel`: every ``z``, every chain-rule term of ``∂L/∂k``,
``∂L/∂x`` and ``∂L/∂b``, numbers checked against autograd) together with its text,
Markdown and LaTeX renderings and its figure.

This module sits above the family: it imports the model and the renderers; the model
imports none of them, and the renderers import only the model, so the family has no
import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..seed import Divisor
from .figures import explain_figure
from .layout import Layout
from .model import TOLERANCE, DerivationModel, InputTerm, Term, first_max, sigmoid
from .options import MAX_INPUTS, MAX_KERNEL, MAX_OUTPUTS, MAX_WEIGHTS, check_size
from .render import equations_latex, render
from .values import Values, load_values, sym

__all__ = ["MAX_INPUTS", "MAX_KERNEL", "MAX_OUTPUTS", "MAX_WEIGHTS", "TOLERANCE", "Derivation",
           "DerivationModel", "InputTerm", "Term", "Values", "check_size", "explain", "first_max",
           "load_values", "sigmoid", "sym"]


class Derivation(DerivationModel):
    """A :class:`.model.DerivationModel` with its renderings (what :func:`explain` returns)."""

    def to_text(self) -> str:
        """Plain text (Unicode ∂, σ, ·); every equation's right side parses with SymPy."""
        return render(self, "text")

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown with ``$…$`` / ``$$…$$`` math."""
        return render(self, "markdown")

    def to_latex(self, standalone: bool = True) -> str:
        """LaTeX (amsmath): a complete document, or with ``standalone=False`` its body."""
        return render(self, "latex", standalone=standalone)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        return equations_latex(self)

    def figure(self, path: str | Path) -> None:
        """Write a PNG of what the equations say (see :func:`.figures.explain_figure`)."""
        explain_figure(self, path)

def explain(input_shape: int | Sequence[int] = (3, 3), kernel_shape: int | Sequence[int] = (2, 2),
            stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
            divisor: Divisor = "kernel", values: Any = None, seed: int | None = None, *,
            dilation: int | Sequence[int] = 1, channels: tuple[int, int] | None = None,
            groups: int = 1, transposed: bool = False, output_padding: int | Sequence[int] = 0,
            op: str = "conv") -> Derivation:
    """The founding document's derivation for any shape, as SymPy expressions.

    Args:
        input_shape: ``S_X = (X_W, X_H)``, **width first** as in the document
            (an int means square; a 1-tuple ``(X_W,)`` gives the 1-D derivation, a
            3-tuple ``(X_W, X_H, X_D)`` the 3-D one, which is written as text, Markdown
            and LaTeX but not drawn).
        kernel_shape: ``S_K = (K_W, K_H)`` (``(K_W,)`` in 1-D, ``(K_W, K_H, K_D)`` in 3-D;
            an int means the same size along every axis).
        stride: ``S`` or ``(S_W, S_H)``.
        padding: zero padding ``P`` or ``(P_W, P_H)`` on both sides of each axis.
        divisor: what eq. 5 divides by: ``"kernel"`` (``K_W·K_H``, the document's
            worked equations; default), ``"stride"`` (``S_W·S_H``) or a number.
            Pooling ignores it (average pooling divides by ``K_W·K_H``).
        values: None (symbols only); ``"seed"`` (the demo's numbers, 3×3 / 2×2
            only); ``"random"`` (from ``seed``); a path to ``.npz`` or ``.json``
            with arrays ``x``, ``k``, ``y`` (and ``b`` with channels); or a
            mapping/tuple of those arrays, in the shown layout (row-major ``(H, W)``
            for one channel, ``(C, H, W)`` and ``(A, B, K_H, K_W)`` with channels;
            ``(D, H, W)`` in 3-D, as PyTorch's conv3d).
        seed: random seed for ``values="random"`` (default 0).
        dilation: ``d`` or ``(d_W, d_H)``: the kernel's taps are ``d`` apart (1 = none).
        channels: ``(C_in, C_out)``: several channels, with a bias ``b`` per output channel.
        groups: ``G``: each output channel sums over the ``C_in/G`` input channels of its group.
        transposed: the transposed convolution (weights ``(C_in, C_out/G, K_H, K_W)``).
        output_padding: with ``transposed``, extra rows/columns after the output.
        op: ``"conv"`` (default), ``"maxpool"`` or ``"avgpool"``.

    Returns:
        A :class:`Derivation` (``.to_text()``, ``.to_markdown()``, ``.to_latex()``,
        the SymPy expressions, and ``.values`` when numbers were given).

    Raises:
        ValueError: bad shapes, a kernel larger than the padded input, sizes
            beyond :data:`MAX_OUTPUTS`/:data:`MAX_KERNEL`, or unusable values.
    """
    if transposed:
        if op != "conv":
            raise ValueError(f"transposed applies to the convolution, not to {op}")
        if divisor == "stride":
            raise ValueError("the transposed convolution divides by the kernel size or a number; "
                             "divisor 'stride' (eq. 5 as printed) belongs to the forward one")
        op = "conv_transpose"
    layout = Layout.create(input_shape, kernel_shape, stride, padding, dilation, divisor, op=op,
                           channels=channels, groups=groups, output_padding=output_padding)
    check_size(layout)
    d = Derivation(layout)
    if values is not None:
        x, k, y, b, source = load_values(values, layout, seed)
        d.evaluate(x, k, y, source, b)
    return d
