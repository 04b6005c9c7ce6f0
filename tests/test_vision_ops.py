"""unfold/fold, pixel (un)shuffle and interpolate/Upsample: naive loops, the adjoint
identity between unfold and fold, finite differences and PyTorch parity in float64."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)

import convprop as cp
import convprop.functional as F
from convprop import nn

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

TOL = 1e-10


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def compare(fn, tfn, x: np.ndarray, seed: int = 1) -> None:
    xc, xt = cp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = fn(xc), tfn(xt)
    assert yc.shape == tuple(yt.shape)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=0, atol=TOL)
    g = rand(*yc.shape, seed=seed)
    yc.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=TOL)


# -------------------------------------------------------------------- unfold / fold
WINDOWS = [
    dict(kernel_size=2), dict(kernel_size=3, padding=1), dict(kernel_size=(2, 3), stride=2),
    dict(kernel_size=2, dilation=2, padding=1, stride=(1, 2)), dict(kernel_size=1),
    dict(kernel_size=(3, 1), dilation=(1, 2), padding=(0, 2), stride=3),
]


@pytest.mark.parametrize("kw", WINDOWS)
def test_unfold_and_fold_match_torch(kw: dict) -> None:
    x = rand(2, 3, 7, 6)
    compare(lambda t: F.unfold(t, **kw), lambda t: tF.unfold(t, **kw), x)
    compare(lambda t: F.unfold(t, **kw), lambda t: tF.unfold(t, **kw), x[0])  # unbatched
    cols = F.unfold(x, **kw).data
    compare(lambda t: F.fold(t, (7, 6), **kw), lambda t: tF.fold(t, (7, 6), **kw), cols)
    compare(lambda t: F.fold(t, (7, 6), **kw), lambda t: tF.fold(t, (7, 6), **kw), cols[1])
    layer, tlayer = nn.Unfold(**kw), torch.nn.Unfold(**kw)
    assert repr(layer) == repr(tlayer)
    compare(layer, tlayer, x)
    layer, tlayer = nn.Fold((7, 6), **kw), torch.nn.Fold((7, 6), **kw)
    assert repr(layer) == repr(tlayer)
    compare(layer, tlayer, cols)


def test_unfold_matches_naive_loops_and_fold_is_its_adjoint() -> None:
    x = rand(2, 2, 5, 4)
    k, s, p, d = (2, 3), (2, 1), (1, 1), (1, 2)
    cols = F.unfold(x, k, d, p, s).data
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (5 + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (4 + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    want = np.empty((2, 2 * k[0] * k[1], oh * ow))
    for c, i, j, oi, oj in itertools.product(range(2), range(k[0]), range(k[1]), range(oh),
                                             range(ow)):
        want[:, (c * k[0] + i) * k[1] + j, oi * ow + oj] = xp[:, c, oi * s[0] + i * d[0],
                                                             oj * s[1] + j * d[1]]
    np.testing.assert_array_equal(cols, want)
    v = rand(*cols.shape, seed=3)  # <unfold(x), v> == <x, fold(v)>
    np.testing.assert_allclose(np.sum(cols * v), np.sum(x * F.fold(v, (5, 4), k, d, p, s).data),
                               rtol=1e-12)


def test_unfold_fold_gradchecks() -> None:
    x = cp.tensor(rand(1, 2, 4, 5), requires_grad=True)
    cp.gradcheck(lambda t: F.unfold(t, 2, 1, 1, 2), x)
    c = cp.tensor(rand(1, 8, 6), requires_grad=True)
    cp.gradcheck(lambda t: F.fold(t, (3, 4), 2), c)


def test_unfold_fold_errors() -> None:
    with pytest.raises(ValueError, match=r"unfold: input must be \(N, C, H, W\)"):
        F.unfold(rand(3, 4), 2)
    with pytest.raises(ValueError, match="kernel 4 is larger than the input's height 3"):
        F.unfold(rand(1, 1, 3, 3), 4)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        F.unfold(rand(1, 1, 3, 3), 2, padding=-1)
    with pytest.raises(ValueError, match="divisible by the kernel's 4 taps"):
        F.fold(rand(1, 6, 12), (4, 5), 2)
    with pytest.raises(ValueError, match="has 10 blocks but"):
        F.fold(rand(1, 4, 10), (4, 5), 2)
    with pytest.raises(ValueError, match=r"fold: input must be \(N, C\*kh\*kw, L\)"):
        F.fold(rand(4), (4, 5), 2)


# --------------------------------------------------------------- pixel (un)shuffle
@pytest.mark.parametrize("shape,r", [((2, 8, 3, 4), 2), ((9, 2, 3), 3), ((2, 1, 4, 1, 2), 1)])
def test_pixel_shuffle_matches_torch_and_unshuffle_inverts_it(shape, r: int) -> None:
    x = rand(*shape)
    compare(lambda t: F.pixel_shuffle(t, r), lambda t: tF.pixel_shuffle(t, r), x)
    y = F.pixel_shuffle(x, r).data
    compare(lambda t: F.pixel_unshuffle(t, r), lambda t: tF.pixel_unshuffle(t, r), y)
    np.testing.assert_array_equal(F.pixel_unshuffle(y, r).data, x)
    assert repr(nn.PixelShuffle(r)) == repr(torch.nn.PixelShuffle(r))
    assert repr(nn.PixelUnshuffle(r)) == repr(torch.nn.PixelUnshuffle(r))
    compare(nn.PixelShuffle(r), torch.nn.PixelShuffle(r), x)
    compare(nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r), y)


def test_pixel_shuffle_of_an_empty_batch() -> None:
    """PyTorch shuffles an empty batch forward (its backward trips over the shape)."""
    x = cp.tensor(np.zeros((0, 4, 2, 2)), requires_grad=True)
    y = F.pixel_shuffle(x, 2)
    assert y.shape == tuple(tF.pixel_shuffle(torch.zeros(0, 4, 2, 2), 2).shape) == (0, 1, 4, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert F.pixel_unshuffle(y, 2).shape == (0, 4, 2, 2)


def test_pixel_shuffle_naive_and_errors() -> None:
    x = rand(1, 8, 2, 3)
    y = F.pixel_shuffle(x, 2).data
    for c, i, j, h, w in itertools.product(range(2), range(2), range(2), range(2), range(3)):
        assert y[0, c, h * 2 + i, w * 2 + j] == x[0, c * 4 + i * 2 + j, h, w]
    with pytest.raises(ValueError, match="channels divisible by 4"):
        F.pixel_shuffle(rand(1, 6, 2, 2), 2)
    with pytest.raises(ValueError, match="height and width divisible by 2"):
        F.pixel_unshuffle(rand(1, 1, 3, 4), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive int"):
        F.pixel_shuffle(x, 0)
    with pytest.raises(ValueError, match="downscale_factor must be a positive int"):
        F.pixel_unshuffle(x, 1.5)


# ------------------------------------------------------------------- interpolate
CASES = [
    dict(scale_factor=2), dict(scale_factor=1.7), dict(scale_factor=0.5), dict(scale_factor=1 / 3),
    dict(size=7), dict(size=1), dict(scale_factor=2.5, recompute_scale_factor=True),
    dict(scale_factor=0.3, recompute_scale_factor=False),
]
MODES = [(1, "nearest"), (2, "nearest"), (3, "nearest"), (1, "linear"), (2, "bilinear"),
         (3, "trilinear"), (2, "nearest-exact"), (1, "area"), (2, "area")]


@pytest.mark.parametrize("nd,mode", MODES)
def test_interpolate_matches_torch(nd: int, mode: str) -> None:
    linear = mode in ("linear", "bilinear", "trilinear")
    checked = 0
    for shape in ((2, 3, 5, 4, 3), (1, 2, 1, 2, 7)):
        x = rand(*shape[: 2 + nd])
        per_axis = [dict(size=(3, 9, 2)[:nd]), dict(scale_factor=(1.5, 2.0, 0.75)[:nd])]
        for kw, corners in itertools.product(CASES + per_axis, (None, False, True) if linear
                                             else (None,)):
            try:
                empty = tF.interpolate(torch.from_numpy(x), mode=mode, align_corners=corners,
                                       **kw).numel() == 0
            except RuntimeError:  # an output size of 0: both refuse
                empty = True
            if empty:
                with pytest.raises(ValueError, match="sizes must be > 0"):
                    F.interpolate(x, mode=mode, align_corners=corners, **kw)
                continue
            compare(lambda t, k=kw, c=corners: F.interpolate(t, mode=mode, align_corners=c, **k),
                    lambda t, k=kw, c=corners: tF.interpolate(t, mode=mode, align_corners=c, **k), x)
            checked += 1
    assert checked >= 12


def test_nearest_uses_torchs_float32_index_rule() -> None:
    """PyTorch computes ``floor(dst * in/out)`` in float32; in float64 some outputs of a
    x3 / 1/3 scale would pick a different neighbour."""
    for size, scale in ((7, 1 / 3), (10, 0.7), (13, 2.3)):
        x = rand(1, 1, size)
        compare(lambda t, s=scale: F.interpolate(t, scale_factor=s),
                lambda t, s=scale: tF.interpolate(t, scale_factor=s), x)


def test_upsample_modules_match_torch() -> None:
    x = rand(2, 3, 4, 5)
    for make in (lambda L: L.Upsample(scale_factor=2),
                 lambda L: L.Upsample(size=(3, 7), mode="bilinear", align_corners=True),
                 lambda L: L.Upsample(scale_factor=(1.5, 0.5), mode="bilinear"),
                 lambda L: L.UpsamplingNearest2d(scale_factor=3),
                 lambda L: L.UpsamplingBilinear2d(size=6)):
        layer, tlayer = make(nn), make(torch.nn)
        assert repr(layer) == repr(tlayer)
        compare(layer, tlayer, x)
    compare(nn.Upsample(scale_factor=2, mode="trilinear"),
            torch.nn.Upsample(scale_factor=2, mode="trilinear"), rand(1, 2, 3, 2, 4))


def test_interpolate_matches_naive_bilinear() -> None:
    x = rand(1, 1, 3, 4)
    y = F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False).data

    def source(j: int, n_in: int, n_out: int) -> tuple[int, int, float]:
        src = max((j + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), src - i0

    for i, j in itertools.product(range(5), range(7)):
        r0, r1, a = source(i, 3, 5)
        c0, c1, b = source(j, 4, 7)
        want = ((1 - a) * ((1 - b) * x[0, 0, r0, c0] + b * x[0, 0, r0, c1])
                + a * ((1 - b) * x[0, 0, r1, c0] + b * x[0, 0, r1, c1]))
        assert abs(y[0, 0, i, j] - want) < 1e-13


def test_interpolate_gradchecks() -> None:
    x = cp.tensor(rand(1, 2, 3, 4), requires_grad=True)
    cp.gradcheck(lambda t: F.interpolate(t, scale_factor=1.5, mode="bilinear"), x)
    cp.gradcheck(lambda t: F.interpolate(t, size=(5, 2), mode="bilinear", align_corners=True), x)
    cp.gradcheck(lambda t: F.interpolate(t, scale_factor=2), x)
    cp.gradcheck(lambda t: F.interpolate(t, size=(2, 3), mode="area"), x)


def test_interpolate_errors() -> None:
    x = rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="only one of size and scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="mode='linear' needs 3-D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(NotImplementedError, match="bicubic.*outside convprop's scope"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(NotImplementedError, match="antialias"):
        F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(x, size=2, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="size must be an int or 2 ints"):
        F.interpolate(x, size=(2, 2, 2))
    with pytest.raises(ValueError, match="scale_factor must be a number or 2 numbers"):
        F.interpolate(x, scale_factor=(2,))
    with pytest.raises(ValueError, match="scale_factor must be positive"):
        F.interpolate(x, scale_factor=-1)
    with pytest.raises(ValueError, match="1 to 3 spatial dims"):
        F.interpolate(rand(4, 4), size=2)


def test_empty_batch_resamples_like_torch() -> None:
    x = rand(0, 2, 3, 4)
    for kw in (dict(scale_factor=2), dict(size=(5, 5), mode="bilinear"), dict(size=2, mode="area")):
        compare(lambda t, k=kw: F.interpolate(t, **k), lambda t, k=kw: tF.interpolate(t, **k), x)
    compare(lambda t: F.unfold(t, 2), lambda t: tF.unfold(t, 2), x)
    compare(lambda t: F.fold(t, (3, 4), 2), lambda t: tF.fold(t, (3, 4), 2), rand(0, 8, 6))


@pytest.mark.parametrize("op", [
    lambda t: F.unfold(t, 2), lambda t: F.fold(F.unfold(t, 2, padding=1), (6, 6), 2, padding=1),
    lambda t: F.pixel_shuffle(t, 2), lambda t: F.pixel_unshuffle(t, 3),
    lambda t: F.interpolate(t, scale_factor=2), lambda t: F.interpolate(t, size=(4, 9), mode="bilinear"),
    lambda t: F.interpolate(t, size=4, mode="area"),
])
def test_vision_ops_keep_float32(op) -> None:
    x = cp.tensor(rand(2, 4, 6, 6).astype(np.float32), requires_grad=True)
    y = op(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
