"""Train a LeNet-style CNN on scikit-learn's 8x8 digits with convprop, then move it to PyTorch.

Usage: ``python examples/train_digits.py [--epochs 30] [--lr 3e-3] [--batch-size 32] [--seed 0]``
(the same options as ``convprop train digits``).  Needs the ``cli`` extras
(scikit-learn, tqdm, matplotlib); the PyTorch check runs only if torch is installed.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import convprop as cp
from convprop import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    train.add_arguments(parser)
    args = parser.parse_args(["digits", *(sys.argv[1:] if argv is None else argv)])
    status = train.run(args)

    try:  # the checkpoint is a PyTorch state dict too: same keys, same layouts
        import torch
    except ImportError:
        return status
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(64, 10)).eval()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in cp.load(args.checkpoint).items()})
    _, x_test, _, y_test = train.load_digits()
    with torch.no_grad():
        predicted = tmodel(torch.from_numpy(x_test)).argmax(1).numpy()
    print(f"the same checkpoint in PyTorch: held-out accuracy {np.mean(predicted == y_test):.2%}")
    return status


if __name__ == "__main__":
    sys.exit(main())
