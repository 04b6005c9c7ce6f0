"""Optimizers and learning-rate schedulers with PyTorch's names, update rules and
state-dict layout.

``from convprop import optim`` in place of ``from torch import optim``: the
optimizers are here, the schedulers in :mod:`convprop.optim.lr_scheduler` (and,
for convenience, here too).  :func:`to_torch` / :func:`from_torch` carry state
dicts to and from PyTorch.
"""

from . import lr_scheduler
from .adam import Adam, AdamW, NAdam, RAdam
from .convert import from_torch, to_torch
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .optimizer import Optimizer
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "NAdam",
    "OneCycleLR",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "from_torch",
    "lr_scheduler",
    "to_torch",
]
