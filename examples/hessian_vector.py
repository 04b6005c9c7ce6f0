"""A Hessian-vector product of a small CNN's loss, checked against PyTorch and against
finite differences of the gradient.

Usage: ``python examples/hessian_vector.py``.

Curvature along a direction ``v`` in weight space -- ``H v`` with ``H`` the Hessian of
the loss -- drives Newton-CG, sharpness measures and the top-eigenvalue power
iteration, and never needs ``H`` itself: :func:`convprop.functional.hvp` takes the
gradient with ``create_graph=True`` and differentiates ``grad · v`` once more
(reverse over reverse), about the cost of two backward passes.  Here the loss is a
two-layer CNN (conv, tanh, max pool, conv, bias, cross-entropy) as a function of its
weights; its ``H v`` must equal PyTorch's ``torch.autograd.functional.hvp`` (float64,
<= 1e-10) and the central difference ``(grad(w + eps v) - grad(w - eps v)) / 2 eps``.
A few power-iteration steps then estimate the largest curvature.  Prints ``OK`` when
all agree.
"""

from __future__ import annotations

import numpy as np

import convprop as cp
import convprop.functional as F


def loss_fn(F, M, images, labels):
    """The CNN's mean cross-entropy as a function of its weights ``(w1, w2, b2)``; ``F, M``
    are ``convprop.functional, convprop`` or ``torch.nn.functional, torch``."""

    def loss(w1, w2, b2):
        h = F.max_pool2d(F.conv2d(images, w1, padding=1).tanh(), 2)
        logits = F.conv2d(h, w2, b2).flatten(1)  # (N, 3): a 3-class read-out
        return F.cross_entropy(logits, labels)

    return loss


def main() -> int:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 1, 6, 6))
    labels = np.array([0, 2, 1, 1, 0, 2])
    weights = [rng.standard_normal((4, 1, 3, 3)) * 0.5, rng.standard_normal((3, 4, 3, 3)) * 0.3,
               rng.standard_normal(3) * 0.1]
    v = [rng.standard_normal(w.shape) for w in weights]

    loss = loss_fn(F, cp, cp.tensor(images), cp.tensor(labels))
    value, hv = F.hvp(loss, tuple(cp.tensor(w) for w in weights), tuple(cp.tensor(a) for a in v))
    print(f"loss {value.item():.10f}; |H v| = {np.sqrt(sum((h.data ** 2).sum() for h in hv)):.8f}")

    def gradient(ws):
        ts = [cp.tensor(w, requires_grad=True) for w in ws]
        return [g.data for g in cp.grad(loss(*ts), ts)]

    eps = 1e-5
    plus = gradient([w + eps * d for w, d in zip(weights, v)])
    minus = gradient([w - eps * d for w, d in zip(weights, v)])
    fd_err = max(float(np.abs(h.data - (p - m) / (2 * eps)).max())
                 for h, p, m in zip(hv, plus, minus))
    print(f"finite differences of the gradient: worst difference {fd_err:.2e}")
    ok = fd_err <= 1e-6

    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: the comparison with it is skipped")
    else:
        tloss = loss_fn(torch.nn.functional, torch, torch.tensor(images), torch.tensor(labels))
        tvalue, thv = torch.autograd.functional.hvp(
            tloss, tuple(torch.tensor(w) for w in weights), tuple(torch.tensor(a) for a in v))
        worst = max([abs(value.item() - tvalue.item())]
                    + [float(np.abs(h.data - t.numpy()).max()) for h, t in zip(hv, thv)])
        print(f"PyTorch: worst difference (loss and H v) {worst:.2e}")
        ok = ok and worst <= 1e-10

    # power iteration: the largest-magnitude eigenvalue of H from repeated products
    d = [a / np.sqrt(sum((b ** 2).sum() for b in v)) for a in v]
    for _ in range(20):
        _, hd = F.hvp(loss, tuple(cp.tensor(w) for w in weights), tuple(cp.tensor(a) for a in d))
        rayleigh = sum(float((h.data * a).sum()) for h, a in zip(hd, d))
        norm = np.sqrt(sum((h.data ** 2).sum() for h in hd))
        d = [h.data / norm for h in hd]
    print(f"largest curvature (20 power-iteration steps): {rayleigh:.6f}")
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
