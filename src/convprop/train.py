"""``convprop train digits``: a LeNet-style CNN on scikit-learn's 8x8 handwritten digits.

The digits ship with scikit-learn (1,797 images, no download).  A fixed,
stratified 80/20 split holds out 360 images; the network trains with Adam and
a cosine learning-rate schedule, shows a progress bar with the running loss
and accuracy, then saves a checkpoint (``.npz``, PyTorch's state-dict layout)
and two figures: the loss/accuracy curves and the learned first-layer kernels.
The same ``--seed`` gives the same run, number for number.

scikit-learn, tqdm and matplotlib are optional extras, imported only here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nn, optim
from .autograd import Tensor, no_grad
from .io import check_target, save

DATASETS = ("digits",)
SPLIT_SEED = 0  # the held-out set is the same for every training seed


def lenet(num_classes: int = 10) -> nn.Sequential:
    """LeNet's shape (two conv-pool stages, two fully connected layers) for 8x8 input,
    with batch normalisation after each convolution and dropout before the classifier.

    ``(N, 1, 8, 8)`` -> conv 3x3 (16) -> pool -> ``(N, 16, 4, 4)`` -> conv 3x3 (32)
    -> pool -> ``(N, 32, 2, 2)`` -> 128 -> 64 -> ``num_classes`` logits.
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, num_classes),
    )


def load_digits(test_size: float = 0.2, limit: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split of scikit-learn's digits as float32 ``(N, 1, 8, 8)`` in [0, 1].

    Args:
        test_size: held-out fraction.
        limit: keep only the first ``limit`` images (before splitting), for quick runs.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return tuple(train_test_split(x, y, test_size=test_size, stratify=y,  # type: ignore[return-value]
                                  random_state=SPLIT_SEED))


@dataclass
class TrainResult:
    """What a run produced: per-epoch history, the held-out accuracy and where files went."""

    model: nn.Module
    test_accuracy: float
    test_correct: int
    test_total: int
    history: dict[str, list[float]] = field(default_factory=dict)
    checkpoint: Path | None = None
    plots: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 500
             ) -> tuple[float, int]:
    """Mean cross-entropy and number of correct predictions, in eval mode, without a graph."""
    model.eval()
    total_loss, correct = 0.0, 0
    with no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(Tensor._wrap(x[start:start + batch_size]))
            yb = y[start:start + batch_size]
            total_loss += nn.CrossEntropyLoss(reduction="sum")(logits, yb).item()
            correct += int((logits.data.argmax(axis=1) == yb).sum())
    model.train()
    return total_loss / max(1, len(x)), correct


def train_digits(epochs: int = 30, lr: float = 3e-3, batch_size: int = 32, seed: int = 0,
                 checkpoint: str | Path | None = None, plots: str | Path | None = None,
                 progress: bool = True, limit: int | None = None,
                 test_size: float = 0.2) -> TrainResult:
    """Train :func:`lenet` on the digits and report held-out accuracy.

    Args:
        epochs: passes over the training images.
        lr: Adam's initial learning rate (cosine-annealed to 0 over the run).
        batch_size: images per step.
        seed: seeds the initial weights, the shuffling and dropout.
        checkpoint: where to save the final state dict (``.npz``), or None.
        plots: directory for ``curves.png`` and ``kernels.png``, or None.
        progress: show a tqdm bar with the running loss and accuracy.
        limit: use only the first ``limit`` images (quick runs, tests).
        test_size: held-out fraction (stratified, fixed split).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    if checkpoint is not None:
        check_target(checkpoint)  # before the training, not after it
    if plots is not None and not Path(plots).parent.is_dir():
        raise FileNotFoundError(f"plots: cannot create {os.fspath(plots)!r}: directory "
                                f"{os.fspath(Path(plots).parent)!r} does not exist")
    x_train, x_test, y_train, y_test = load_digits(test_size, limit)
    nn.init.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = lenet()
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.CosineAnnealingLR(opt, T_max=epochs)
    criterion = nn.CrossEntropyLoss()
    steps_per_epoch = -(-len(x_train) // batch_size)
    history: dict[str, list[float]] = {"train_loss": [], "train_acc": [], "test_loss": [],
                                       "test_acc": []}
    bar = _progress(epochs * steps_per_epoch, progress)
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        seen = correct = 0
        loss_sum = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(Tensor._wrap(xb))
            loss = criterion(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            bar.update(1)
            bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} loss {loss_sum / seen:.4f} "
                                f"acc {correct / seen:.3f}", refresh=False)
        sched.step()
        test_loss, test_correct = evaluate(model, x_test, y_test)
        history["train_loss"].append(loss_sum / seen)
        history["train_acc"].append(correct / seen)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_correct / len(y_test))
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} loss {loss_sum / seen:.4f} "
                            f"acc {correct / seen:.3f} test {test_correct / len(y_test):.3f}")
    bar.close()
    model.eval()
    result = TrainResult(model, test_correct / len(y_test), test_correct, len(y_test), history,
                         seconds=time.perf_counter() - started)
    if checkpoint is not None:
        result.checkpoint = Path(checkpoint)
        save(model.state_dict(), result.checkpoint)
    if plots is not None:
        result.plots = write_plots(result, Path(plots))
    return result


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="train digits", unit="step", dynamic_ncols=True)


def write_plots(result: TrainResult, directory: Path) -> list[Path]:
    """``curves.png`` (loss and accuracy per epoch) and ``kernels.png`` (first-layer filters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(exist_ok=True)  # only the leaf: a missing parent is an error
    h = result.history
    epochs = np.arange(1, len(h["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, h["train_loss"], label="train")
    ax_loss.plot(epochs, h["test_loss"], label="held-out")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss", yscale="log")
    ax_acc.plot(epochs, h["train_acc"], label="train")
    ax_acc.plot(epochs, h["test_acc"], label="held-out")
    ax_acc.set(xlabel="epoch", ylabel="accuracy",
               title=f"Accuracy (held-out final {result.test_accuracy:.2%})")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    curves = directory / "curves.png"
    fig.savefig(curves, dpi=100)
    plt.close(fig)

    weights = next(iter(result.model.parameters())).data  # (16, 1, 3, 3)
    cols = 8
    rows = -(-weights.shape[0] // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.3))
    limit = float(np.abs(weights).max())
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < weights.shape[0]:
            ax.imshow(weights[i, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(i), fontsize=8)
    fig.suptitle("First-layer 3x3 kernels")
    fig.tight_layout()
    kernels = directory / "kernels.png"
    fig.savefig(kernels, dpi=100)
    plt.close(fig)
    return [curves, kernels]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``convprop train`` (the dataset is positional)."""
    from ._args import non_negative_int, output_dir, output_file, positive_float, positive_int

    parser.add_argument("dataset", choices=DATASETS, help="dataset to train on")
    parser.add_argument("--epochs", type=positive_int, default=30, help="passes over the data (30)")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="Adam learning rate (3e-3)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per step (32)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same run (0)")
    parser.add_argument("--checkpoint", default="digits_cnn.npz", type=output_file(".npz"),
                        metavar="FILE.npz",
                        help="where to save the trained weights (.npz; default digits_cnn.npz)")
    parser.add_argument("--plots", default="digits_plots", type=output_dir, metavar="DIR",
                        help="directory for curves.png and kernels.png (default digits_plots)")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run ``convprop train`` from parsed arguments; prints a summary, returns 0."""
    if args.dataset not in DATASETS:
        print(f"unknown dataset {args.dataset!r}; choose from {DATASETS}", file=sys.stderr)
        return 2
    result = train_digits(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed, checkpoint=args.checkpoint,
                          plots=None if args.no_plots else args.plots,
                          progress=not args.no_progress, limit=getattr(args, "limit", None))
    print(f"held-out accuracy: {result.test_accuracy:.2%} "
          f"({result.test_correct}/{result.test_total}) after {args.epochs} epochs "
          f"in {result.seconds:.1f} s")
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}")
    for path in result.plots:
        print(f"figure: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convprop train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
