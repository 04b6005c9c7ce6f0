"""WGAN-GP's gradient penalty on a small convolutional critic, checked against PyTorch.

Usage: ``python examples/gradient_penalty.py``.

The penalty of Gulrajani et al. (2017) keeps the critic ``D`` 1-Lipschitz along lines
between real and generated images::

    x_hat   = e * x_real + (1 - e) * x_fake            e ~ U(0, 1) per image
    penalty = lambda * mean_i (||d D(x_hat_i) / d x_hat_i||_2 - 1)^2

The penalty is a function of a *gradient*, so training the critic on it needs the
gradient of that gradient with respect to the critic's weights: the input gradient is
taken with ``create_graph=True`` (:func:`convprop.grad`), which records it as a graph of
convolutions and transposed convolutions, and ``penalty.backward()`` differentiates
through it.  The same critic with the same weights in PyTorch (float64) must give the
same penalty and the same weight gradients (<= 1e-10); a finite difference of the
penalty checks one weight gradient without PyTorch.  Prints ``OK`` when all agree.
"""

from __future__ import annotations

import numpy as np

import convprop as cp
from convprop import nn

LAMBDA = 10.0


def critic(lib):
    """A small conv critic on 1x8x8 images: two strided convolutions and a linear read-out."""
    return lib.Sequential(
        lib.Conv2d(1, 4, 3, stride=2, padding=1), lib.LeakyReLU(0.2),
        lib.Conv2d(4, 8, 3, stride=2, padding=1), lib.LeakyReLU(0.2),
        lib.Flatten(), lib.Linear(8 * 2 * 2, 1))


def gradient_penalty(model, x_hat, grad) -> object:
    """``LAMBDA * mean((||dD/dx_hat|| - 1)^2)``; ``grad`` is ``convprop.grad`` or
    ``torch.autograd.grad`` (the rest of the code is the same for both)."""
    scores = model(x_hat)
    (g,) = grad(scores.sum(), x_hat, create_graph=True)
    norms = g.flatten(1).norm(2, 1)
    return LAMBDA * ((norms - 1) ** 2).mean()


def main() -> int:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((4, 1, 8, 8))
    fake = rng.standard_normal((4, 1, 8, 8))
    e = rng.uniform(size=(4, 1, 1, 1))
    mix = e * real + (1 - e) * fake

    cp.manual_seed(0)
    model = critic(nn).double()
    x_hat = cp.tensor(mix, requires_grad=True)
    penalty = gradient_penalty(model, x_hat, cp.grad)
    penalty.backward()
    print(f"convprop penalty: {penalty.item():.12f}")

    # a central difference of the penalty along one weight checks its gradient
    w = model[0].weight
    eps, k = 1e-6, (1, 0, 2, 1)
    values = []
    for step in (eps, -eps):
        with cp.no_grad():
            w.data[k] += step
        values.append(gradient_penalty(model, cp.tensor(mix, requires_grad=True), cp.grad).item())
        with cp.no_grad():
            w.data[k] -= step
    numeric = (values[0] - values[1]) / (2 * eps)
    fd_err = abs(numeric - w.grad[k])
    print(f"finite difference of d penalty / d w{list(k)}: {numeric:.8f}; "
          f"backward: {w.grad[k]:.8f}")
    ok = fd_err <= 1e-6 * max(1.0, abs(numeric))

    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: the comparison with it is skipped")
    else:
        tmodel = critic(torch.nn).double()
        with torch.no_grad():
            for (name, p), (tname, tp) in zip(model.named_parameters(),
                                              tmodel.named_parameters()):
                assert name == tname, (name, tname)
                tp.copy_(torch.from_numpy(p.data))
        tx = torch.tensor(mix, requires_grad=True)
        tpen = gradient_penalty(tmodel, tx, torch.autograd.grad)
        tpen.backward()
        worst = abs(penalty.item() - tpen.item())
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            # a weight the penalty does not reach (the last bias; the first bias only moves
            # the kinks of LeakyReLU) has no gradient, or a zero one
            ours = np.zeros(p.shape) if p.grad is None else p.grad
            theirs = np.zeros(p.shape) if tp.grad is None else tp.grad.numpy()
            worst = max(worst, float(np.abs(ours - theirs).max()))
        print(f"PyTorch penalty:  {tpen.item():.12f}; worst difference (penalty and "
              f"{len(list(model.parameters()))} weight gradients): {worst:.2e}")
        ok = ok and worst <= 1e-10
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
