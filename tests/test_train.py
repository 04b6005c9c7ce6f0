"""The digits training: short runs on a subset (the full >= 98% run is measured, not tested)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import convprop as cp
from convprop import nn, train

pytest.importorskip("sklearn")


def short_run(seed: int = 0, **kwargs) -> train.TrainResult:
    return train.train_digits(epochs=3, lr=3e-3, batch_size=32, seed=seed, progress=False,
                              limit=400, **kwargs)


def test_loss_falls_and_the_same_seed_gives_the_same_run(tmp_path) -> None:
    a = short_run(checkpoint=tmp_path / "a.npz")
    b = short_run(checkpoint=tmp_path / "b.npz")
    assert a.history["train_loss"][-1] < 0.7 * a.history["train_loss"][0]
    assert a.history["test_acc"][-1] > 0.5  # well above chance (0.1) after three short epochs
    assert a.history == b.history
    sa, sb = cp.load(a.checkpoint), cp.load(b.checkpoint)
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    c = short_run(seed=1)
    assert c.history["train_loss"] != a.history["train_loss"]


def test_checkpoint_reloads_and_plots_are_written(tmp_path) -> None:
    result = short_run(checkpoint=tmp_path / "digits.npz", plots=tmp_path / "plots")
    assert [p.name for p in result.plots] == ["curves.png", "kernels.png"]
    for p in result.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = train.lenet()
    model.load_state_dict(cp.load(result.checkpoint))
    x_train, x_test, y_train, y_test = train.load_digits(limit=400)
    _, correct = train.evaluate(model, x_test, y_test)
    assert correct == result.test_correct
    assert "0.weight" in cp.load(result.checkpoint)  # PyTorch's key layout


def test_split_is_stratified_and_fixed() -> None:
    x_train, x_test, y_train, y_test = train.load_digits()
    assert x_train.shape[1:] == (1, 8, 8) and x_train.dtype == np.float32
    assert len(x_test) == 360 and len(x_train) == 1437
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert np.all(np.abs(np.bincount(y_test) - 36) <= 1)
    np.testing.assert_array_equal(train.load_digits()[3], y_test)


def test_command_line_entry(tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["digits", "--epochs", "1", "--batch-size", "64", "--seed", "3",
                              "--checkpoint", str(tmp_path / "m.npz"), "--no-plots",
                              "--no-progress", "--limit", "200"])
    assert train.run(args) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy:" in out and "m.npz" in out
    assert (tmp_path / "m.npz").exists() and not (tmp_path / "digits_plots").exists()
    with pytest.raises(SystemExit):
        parser.parse_args(["mnist"])
    with pytest.raises(ValueError, match="epochs"):
        train.train_digits(epochs=0, progress=False)
    assert isinstance(train.lenet(), nn.Sequential)


def test_missing_output_directories_are_refused_before_training(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        short_run(checkpoint=tmp_path / "ck" / "digits.npz")
    with pytest.raises(FileNotFoundError, match="plots: cannot create"):
        short_run(plots=tmp_path / "a" / "plots")
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        short_run(checkpoint=tmp_path / "digits.pt")
    assert list(tmp_path.iterdir()) == []
