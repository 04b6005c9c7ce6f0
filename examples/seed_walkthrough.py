"""The founding document, run: forward, backward by the chain rule, and training.

    python examples/seed_walkthrough.py            # prints; needs only NumPy
    python examples/seed_walkthrough.py --plot     # also writes seed_walkthrough.png (matplotlib)

Arrays are row-major (H, W); the document's x_{i,j} (column i, row j, from 1) is X[j-1, i-1].
"""

from __future__ import annotations

import sys

import numpy as np

from convprop import seed


def main(plot: bool = False) -> None:
    x, k, y = seed.demo_values()  # the documented defaults: seed.DEFAULT_X, DEFAULT_K, DEFAULT_Y

    # Section II: Z = conv(X, K)/4, O = σ(Z), L = Σ(o − y)², on convprop's autograd engine
    p = seed.forward_backward(x, k, y)  # divisor="kernel": the document's /4
    print("Z =\n", p.z, "\nO =\n", p.o, f"\nL = {p.loss:.6f}")

    # Section III: ∂L/∂k_{i,j} = Σ ∂L/∂o · ∂o/∂z · ∂z/∂k, every term written out
    cr = seed.chain_rule(p)
    for (i, j) in p.geometry.kernel_elements():
        terms = [f"{cr.terms[j - 1, i - 1, b - 1, a - 1] + 0.0:+.5f}" for (a, b) in p.geometry.outputs()]
        print(f"∂L/∂k_{{{i},{j}}} = {' '.join(terms)} = {cr.grad[j - 1, i - 1]:+.6f}")
    print("autograd and the chain-rule sum differ by", np.abs(p.grad - cr.grad).max())

    # The same derivation as equations (SymPy, if installed)
    try:
        import convprop

        d = convprop.explain(values="seed")
        print("\n".join(d.to_text().splitlines()[-6:]))
    except ImportError:
        print("(pip install sympy to see the symbolic derivation: convprop explain)")

    # Training: K ← K − lr·∂L/∂K until the loss stops falling (or 20 steps)
    h = seed.train(x, k, y)
    print("loss per step:", " ".join(f"{v:.4f}" for v in h.losses))
    print("K after training:\n", h.kernels[-1])
    if plot:
        from convprop.explainer.figures import demo_figure

        demo_figure(h, "seed_walkthrough.png")
        print("wrote seed_walkthrough.png")


if __name__ == "__main__":
    main(plot="--plot" in sys.argv[1:])
