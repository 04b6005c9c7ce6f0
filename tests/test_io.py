"""cp.save / cp.load: .npz round trips, no pickle either way, atomic replacement."""

from __future__ import annotations

import os

import numpy as np
import pytest

import convprop as cp
from convprop import nn


def model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_round_trip_preserves_keys_order_dtypes_and_values(tmp_path) -> None:
    m = model()
    x = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    m.train()(x)  # non-trivial stats
    path = tmp_path / "model.npz"
    cp.save(m.state_dict(), path)
    loaded = cp.load(path)
    assert list(loaded) == list(m.state_dict())
    for k, v in m.state_dict().items():
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
        np.testing.assert_array_equal(loaded[k], v)
    m2 = model()
    m2.load_state_dict(loaded)
    x = np.ones((2, 1, 4, 4), dtype=np.float32)
    np.testing.assert_array_equal(m2.eval()(x).data, m.eval()(x).data)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary left behind


def test_values_may_be_tensors_torch_tensors_or_numbers(torch, tmp_path) -> None:
    path = tmp_path / "mixed.npz"
    cp.save({"a": cp.Tensor([1.0, 2.0]), "b": torch.ones(2, requires_grad=True), "c": 3,
             "d": np.arange(4, dtype=np.int64)}, str(path))
    loaded = cp.load(str(path))
    np.testing.assert_array_equal(loaded["a"], [1.0, 2.0])
    np.testing.assert_array_equal(loaded["b"], [1.0, 1.0])
    assert loaded["c"].shape == () and loaded["c"] == 3
    assert loaded["d"].dtype == np.int64


def test_a_checkpoint_loads_into_torch(torch, tmp_path) -> None:
    m = model().double().eval()
    cp.save(m.state_dict(), tmp_path / "m.npz")
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                             torch.nn.Linear(8, 3)).double().eval()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in cp.load(tmp_path / "m.npz").items()})
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4))
    np.testing.assert_allclose(tm(torch.tensor(x)).detach().numpy(), m(x).data, atol=1e-12)


def test_save_refuses_objects_and_writes_nothing(tmp_path) -> None:
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError, match="numeric"):
        cp.save({"w": np.array([{"a": 1}], dtype=object)}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        cp.save({1: np.ones(2)}, path)
    with pytest.raises(TypeError, match="mapping"):
        cp.save([np.ones(2)], path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_load_refuses_pickled_objects(tmp_path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.ones(2), obj=np.array([print], dtype=object))
    with pytest.raises(ValueError, match="'obj' holds Python objects"):
        cp.load(path)
    np.save(tmp_path / "single.npy", np.ones(2))
    with pytest.raises(ValueError, match="single array"):
        cp.load(tmp_path / "single.npy")
    (tmp_path / "junk.npz").write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="not a pickle-free"):
        cp.load(tmp_path / "junk.npz")


def test_a_crash_mid_save_leaves_the_old_file_intact(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ckpt.npz"
    cp.save({"w": np.arange(3.0)}, path)
    before = path.read_bytes()

    def crash(fp, array, *args, **kwargs):
        fp.write(b"partial garbage")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(KeyboardInterrupt):
        cp.save({"w": np.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    np.testing.assert_array_equal(cp.load(path)["w"], np.arange(3.0))


def test_keys_named_like_savez_arguments_round_trip(tmp_path) -> None:
    """Keys are not passed to np.savez as keyword arguments: 'file' used to raise,
    'allow_pickle' was silently dropped."""
    path = tmp_path / "keys.npz"
    state = {"file": np.arange(3.0), "allow_pickle": np.ones(2, np.float32),
             "args": np.zeros((2, 2)), "kwds": np.array(7, np.int64),
             "layer.0.weight": np.full((2, 3), 2.5), "a.npy": np.ones(1), "": np.zeros(1)}
    cp.save(state, path)
    for loaded in (cp.load(path), dict(np.load(path, allow_pickle=False))):
        assert list(loaded) == list(state)
        for k, v in state.items():
            assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
            np.testing.assert_array_equal(loaded[k], v)


def test_overwrite_keeps_the_file_mode(tmp_path) -> None:
    path = tmp_path / "m.npz"
    cp.save({"w": np.ones(1)}, path)
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o640)
    cp.save({"w": np.zeros(1)}, path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert cp.load(path)["w"][0] == 0


@pytest.mark.parametrize("name", ["net.pt", "net.pth", "net", "net.npz.tmp"])
def test_save_refuses_a_name_that_is_not_npz_and_says_how_to_reach_pytorch(tmp_path, name):
    with pytest.raises(ValueError, match=r"must end in \.npz.*torch\.from_numpy"):
        cp.save({"w": np.ones(2)}, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_directory_names_the_users_path(tmp_path):
    target = tmp_path / "missing" / "net.npz"
    with pytest.raises(FileNotFoundError, match="missing/net.npz.*does not exist"):
        cp.save({"w": np.ones(2)}, target)
    assert list(tmp_path.iterdir()) == []


def _trained(opt_cls, steps=3, **kw):
    cp.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    opt = opt_cls([{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.05}], **kw)
    sched = cp.optim.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
    x = np.random.default_rng(1).standard_normal((5, 3))

    def step():
        opt.zero_grad()
        (m(x) ** 2).sum().backward()
        opt.step()
        sched.step()

    for _ in range(steps):
        step()
    return m, opt, sched, step


@pytest.mark.parametrize("opt_cls,kw", [
    (cp.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (cp.optim.Adam, {"lr": 0.01, "amsgrad": True}),
    (cp.optim.NAdam, {"lr": 0.01}),
    (cp.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
])
def test_optimizer_and_scheduler_state_dicts_round_trip_and_resume_exactly(tmp_path, opt_cls, kw):
    m, opt, sched, step = _trained(opt_cls, **kw)
    cp.save(m.state_dict(), tmp_path / "model.npz")
    cp.save(opt.state_dict(), tmp_path / "opt.npz")
    cp.save(sched.state_dict(), tmp_path / "sched.npz")
    back = cp.load(tmp_path / "opt.npz")
    assert list(back["state"]) == list(opt.state_dict()["state"])  # int ids stay ints
    assert back["param_groups"] == [
        {k: v for k, v in g.items()} for g in opt.state_dict()["param_groups"]]
    # resume in fresh objects and continue: the same next steps as the uninterrupted run
    m2, opt2, sched2, step2 = _trained(opt_cls, steps=0, **kw)
    m2.load_state_dict(cp.load(tmp_path / "model.npz"))
    opt2.load_state_dict(back)
    sched2.load_state_dict(cp.load(tmp_path / "sched.npz"))
    for _ in range(3):
        step()
        step2()
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_nested_state_keeps_python_types_and_flat_files_stay_plain_npz(tmp_path):
    tree = {"a": {0: np.arange(3.0), 1: [1, 2.5, "x", None, True, float("inf")]}, "b": (1, 2)}
    cp.save(tree, tmp_path / "tree.npz")
    back = cp.load(tmp_path / "tree.npz")
    np.testing.assert_array_equal(back["a"][0], np.arange(3.0))
    assert back["a"][1] == [1, 2.5, "x", None, True, float("inf")] and back["b"] == (1, 2)
    assert type(back["a"][1][0]) is int and type(back["a"][1][4]) is bool
    cp.save({"w": np.ones(2)}, tmp_path / "flat.npz")
    assert np.load(tmp_path / "flat.npz").files == ["w"]  # nothing but the arrays


@pytest.mark.parametrize("bad", [{"s": {1, 2}}, {"o": {"x": object()}}, {(1, 2): np.ones(1)}])
def test_nested_values_outside_the_format_are_refused_before_writing(tmp_path, bad):
    with pytest.raises(TypeError):
        cp.save(bad, tmp_path / "bad.npz")
    assert list(tmp_path.iterdir()) == []
