"""``convprop explain --animate out.gif``: frames read back with Pillow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageSequence

from convprop import seed
from convprop.cli import main
from convprop.explainer.animate import DURATION_MS, MAX_TERM_FRAMES, Frame, frame_plan, write_gif
from convprop.explainer.derivation import explain
from convprop.explainer.page import num, page_model


@pytest.fixture(scope="module")
def gif(tmp_path_factory):
    """The founding document's example (3×3 input, 2×2 kernel, its numbers), through the CLI."""
    path = tmp_path_factory.mktemp("gif") / "seed.gif"
    assert main(["explain", "--values", "seed", "--animate", str(path)]) == 0
    return explain(values="seed"), path


def frames(path) -> list[Image.Image]:
    with Image.open(path) as im:
        return [f.convert("RGB") for f in ImageSequence.Iterator(im)]


def test_one_frame_per_output_per_term_and_the_end(gif):
    d, path = gif
    nz, nk = len(d.geometry.outputs()), len(d.geometry.kernel_elements())
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == nz + nz * nk + 1 == 21
        durations = []
        for f in ImageSequence.Iterator(im):
            durations.append(f.info["duration"])
        comment = json.loads(im.info["comment"])
    assert durations == [DURATION_MS["forward"]] * nz + [DURATION_MS["backward"]] * (nz * nk) + \
        [DURATION_MS["end"]]
    labels = comment["frames"]
    assert len(labels) == 21
    assert labels[0].startswith("forward 1/4:  z₁,₁ = (x₁,₁·k₁,₁ + x₂,₁·k₂,₁ + x₁,₂·k₁,₂ + x₂,₂·k₂,₂)/4")
    assert labels[0].endswith("= 0.375")  # the document's z_{1,1} = 1.5/4
    assert labels[nz].startswith("backward 1/4, term 1/4:  ∂L/∂k₁,₁ += 2(o₁,₁ − y₁,₁)")
    assert "running sum" in labels[nz + nz - 1]
    assert labels[-1].startswith("Z = conv(X, K)/4")
    # every frame shows something new
    imgs = frames(path)
    assert all(ImageChops.difference(a, b).getbbox() for a, b in zip(imgs, imgs[1:]))


def test_the_last_frame_shows_the_derivations_numbers(gif):
    d, path = gif
    with Image.open(path) as im:
        shown = json.loads(im.info["comment"])["last"]
    v = d.values
    assert shown["z"] == [num(a) for a in v.z.ravel()]
    assert shown["g"] == [num(a) for a in v.grad.ravel()]
    assert shown["k"] == [num(a) for a in v.k.ravel()]
    assert [t for t in shown["x"]] == [num(a) for a in v.x.ravel()]  # no padding here
    # and those are autograd's numbers to the digits shown
    p = seed.forward_backward(v.x, v.k, v.y)
    np.testing.assert_allclose([float(t) for t in shown["g"]], p.grad.ravel(), rtol=1e-3)
    np.testing.assert_allclose([float(t) for t in shown["z"]], p.z.ravel(), rtol=1e-3)


def test_the_window_slides_then_the_gradient_fills_in(gif):
    """Pixels: the Z grid changes on every forward frame, and ∂L/∂K starts empty and fills in."""
    d, path = gif
    imgs = frames(path)
    w, h = imgs[0].size
    nz = len(d.geometry.outputs())

    def band(img, left, right):  # a vertical band of the grids, without title and caption
        return img.crop((int(left * w), int(0.2 * h), int(right * w), int(0.75 * h)))

    def ink(img):
        return int((np.asarray(img).min(axis=2) < 90).sum())

    z_band, g_band = (0.55, 0.76), (0.78, 1.0)
    for a, b in zip(imgs[:nz], imgs[1:nz + 1]):
        assert ImageChops.difference(band(a, *z_band), band(b, *z_band)).getbbox()
    assert ImageChops.difference(band(imgs[0], *g_band), band(imgs[nz - 1], *g_band)).getbbox() is None
    assert ink(band(imgs[0], *g_band)) + 100 < ink(band(imgs[-1], *g_band))


def test_padding_and_stride_frames_and_the_per_kernel_plan_for_big_shapes(tmp_path):
    d = explain((3, 3), (2, 2), stride=2, padding=1)  # no values: random, seed 0
    path = tmp_path / "pad.gif"
    n = write_gif(d, path, dpi=40)
    m = page_model(d)
    with Image.open(path) as im:
        assert im.n_frames == n == 4 + 4 * 4 + 1
        comment = json.loads(im.info["comment"])
    assert comment["values"] == "random (seed 0)"
    assert comment["last"]["g"] == [k["grad_text"] for k in m["k"]]
    assert "0 (padding)" in " ".join(comment["frames"])
    assert len(comment["last"]["x"]) == 5 * 5 and comment["last"]["x"][0] == "0"
    assert d.values is None

    # an 8×8 output and a 3×3 kernel: 576 terms, one backward frame per kernel element
    assert 64 * 9 > MAX_TERM_FRAMES
    plan = frame_plan({"z": [{}] * 64, "k": [{}] * 9,
                       "steps": {"plan": [["k", a, b] for a in range(9) for b in range(64)]}})
    assert len(plan) == 64 + 9 + 1 and plan[64] == Frame("backward", a=0, b=None)


def test_write_gif_refuses_a_wrong_suffix(tmp_path):
    with pytest.raises(ValueError, match="must end in .gif"):
        write_gif(explain(), tmp_path / "x.png")


@pytest.mark.parametrize("kwargs, frames_expected", [
    # max pooling: 4 outputs, then the terms of ∂L/∂x (one per window holding x: 9 inputs, 4
    # windows of 2×2 with stride 2 and padding 1 hold each input once), then the end
    (dict(input_shape=(3, 3), kernel_shape=(2, 2), stride=2, padding=1, op="maxpool"), 4 + 9 + 1),
    # 2 → 2 channels: 2·(2×1) outputs, then 2·2·(2×2) weights with 2 terms each, then the two
    # biases with a term per output of their channel (2 each), then the end
    (dict(input_shape=(3, 2), kernel_shape=(2, 2), channels=(2, 2)), 4 + 16 * 2 + 2 * 2 + 1),
])
def test_pooling_and_channels_gifs_end_on_the_derivations_numbers(kwargs, frames_expected, tmp_path):
    d = explain(**kwargs, values="random", seed=7)
    L, v = d.layout, d.values
    path = tmp_path / "kind.gif"
    n = write_gif(d, path, dpi=30)
    with Image.open(path) as im:
        assert im.n_frames == n == frames_expected
        comment = json.loads(im.info["comment"])
    last = comment["last"]
    z_full, gx_full = L.to_full("z", v.z), L.to_full("x", v.grad_x_autograd)
    assert last["z"] == [num(z_full[L.index(o)]) for o in L.outputs()]
    assert last["gx"] == [num(gx_full[L.index(i)]) for i in L.inputs()]
    for shown, i in zip(last["gx"], L.inputs()):
        assert float(shown) == pytest.approx(gx_full[L.index(i)], rel=1e-3, abs=1e-12)
    if L.pooling:
        assert "k" not in last and "backward 1/9, term 1/1:  ∂L/∂x₁,₁ +=" in comment["frames"][4]
    else:
        k_full = L.to_full("k", v.grad_autograd)
        assert last["g"] == [num(k_full[L.index(k)]) for k in L.kernels()]
        assert "k₁,₁,₁,₁" in comment["frames"][0]
        # ∂L/∂b comes last, each b_c adding up ∂L/∂z over the outputs of channel c
        assert last["gb"] == [num(g) for g in v.grad_b_autograd]
        for n, g in enumerate(v.grad_b_autograd):
            assert float(last["gb"][n]) == pytest.approx(g, rel=1e-3, abs=1e-12)
        b_frames = [f for f in comment["frames"] if f.startswith("backward") and "∂L/∂b" in f]
        assert len(b_frames) == 4 and "backward 1/2, term 1/2:  ∂L/∂b₁ += ∂L/∂z₁,₁,₁" in b_frames[0]
        assert b_frames[-1].endswith(f"running sum {num(v.grad_b[1])}")
        assert "∂L/∂b complete" in comment["frames"][-1]
    assert v.max_difference <= 1e-12
