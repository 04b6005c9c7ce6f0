"""``convprop explain --format html``: the page, driven in a real (headless) Chromium.

The browser tests click cells and compare what lights up with the footprint that
:mod:`convprop._windows` and the derivation give, read the numbers back from the
page and recompute them with autograd, and fail on any console error.  They need
Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; where
those are missing they skip with the reason (``.ci/run`` installs them and sets
``CONVPROP_REQUIRE_BROWSER=1``, which turns that skip into a failure).
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import sympy as sp

from convprop import seed
from convprop._windows import windows
from convprop.cli import main
from convprop.explainer.derivation import explain
from convprop.explainer.page import html_page, page_model, write_html

CHROMEDRIVER = "/usr/bin/chromedriver"
CASES = {
    "pad1-random": dict(input_shape=(3, 3), kernel_shape=(2, 2), padding=1),
    "stride2-pad1": dict(input_shape=(5, 5), kernel_shape=(3, 3), stride=2, padding=1,
                         values="random", seed=3),
    "asymmetric": dict(input_shape=(4, 3), kernel_shape=(2, 3), stride=(2, 1), padding=(0, 1),
                       divisor=1, values="random", seed=1),
    "seed": dict(values="seed"),
}


# ---------------------------------------------------------------- browser
def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER)):
        return "no chromium / chromedriver (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _browser_missing()
    if why:
        if os.environ.get("CONVPROP_REQUIRE_BROWSER"):
            pytest.fail(f"CONVPROP_REQUIRE_BROWSER is set but {why}")
        pytest.skip(f"browser tests need a headless Chromium: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """``name -> (derivation, path)`` for every case, written once."""
    folder = tmp_path_factory.mktemp("pages")
    out = {}
    for name, kwargs in CASES.items():
        d = explain(**kwargs)
        path = folder / f"{name}.html"
        write_html(d, path)
        out[name] = (d, path)
    return out


def load(driver, path):
    driver.get(path.as_uri())
    driver.get_log("browser")  # start each page with an empty log
    assert driver.execute_script("return document.readyState") == "complete"


def errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def click(driver, role, cell):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    el = driver.find_element(By.CSS_SELECTOR, f'g[data-role="{role}"][data-cell="{cell[0]},{cell[1]}"]')
    ActionChains(driver).move_to_element(el).click().perform()


def press(driver, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    for k in keys:
        ActionChains(driver).send_keys(k).perform()


_STATE = """
const out = {};
for (const role of ["x", "k", "z", "g"]) {
  out[role] = Array.from(document.querySelectorAll(`g[data-role="${role}"]`)).map(g => ({
    at: g.dataset.at || null, cell: g.dataset.cell || null, input: g.dataset.input || null,
    value: g.dataset.value, cls: Array.from(g.classList),
    text: g.querySelector(".v").textContent, tag: g.querySelector(".tag").textContent}));
}
out.eqs = Array.from(document.querySelectorAll(".eq")).filter(e => !e.hidden).map(e => e.id);
out.label = document.getElementById("step-label").textContent;
out.step = Number(document.getElementById("step").value);
return out;
"""


def state(driver) -> dict:
    return driver.execute_script(_STATE)


def marked(cells, cls, key):
    return {c[key] for c in cells if cls in c["cls"]}


def cell(s: str) -> tuple[int, int]:
    a, b = s.split(",")
    return int(a), int(b)


def footprint(d, x, y) -> set[tuple[int, int]]:
    """Padded-grid cells of the window of ``z_{x,y}``, straight from ``_windows.windows``."""
    g = d.geometry
    (w, h), (pw, ph) = g.input_shape, g.padding
    gw, gh = w + 2 * pw, h + 2 * ph
    grid = np.arange(gw * gh).reshape(1, 1, gh, gw)
    win = windows(grid, g.kernel_shape[::-1], g.stride[::-1], (1, 1), g.output_shape[::-1])
    flat = win[0, 0, :, :, y - 1, x - 1].ravel()
    return {(int(f) % gw + 1, int(f) // gw + 1) for f in flat}


def padded(d, src):
    return src[0] + d.geometry.padding[0], src[1] + d.geometry.padding[1]


# ------------------------------------------------------------ the tests
@pytest.mark.parametrize("name", list(CASES))
def test_hovering_or_clicking_an_output_lights_its_window(browser, pages, name):
    d, path = pages[name]
    load(browser, path)
    g = d.geometry
    for n, (x, y) in enumerate(g.outputs()):
        click(browser, "z", (x, y))
        s = state(browser)
        lit = {cell(a) for a in marked(s["x"], "hl", "at") | marked(s["x"], "hl-pad", "at")}
        assert lit == footprint(d, x, y), (x, y)
        # real cells are the x_{…} that eq. 5 multiplies; the others are padding
        sources = {g.source(i, j, x, y) for (i, j) in g.kernel_elements()}
        assert {cell(c) for c in marked(s["x"], "hl", "input")} == sources - {None}
        assert all(not c["input"] for c in s["x"] if "hl-pad" in c["cls"])
        assert len(marked(s["x"], "hl-pad", "at")) == sum(src is None for src in
                                                           (g.source(i, j, x, y) for (i, j)
                                                            in g.kernel_elements()))
        assert marked(s["z"], "sel", "cell") == {f"{x},{y}"}
        assert s["eqs"] == [f"eq-z-{n}"]
        eq = browser.execute_script(f"return document.getElementById('eq-z-{n}').textContent")
        assert page_model(d)["z"][n]["text"].replace("-", "−") in eq
    assert errors(browser) == []


@pytest.mark.parametrize("name", list(CASES))
def test_clicking_a_kernel_element_lights_every_term_of_its_gradient(browser, pages, name):
    d, path = pages[name]
    load(browser, path)
    for (i, j) in d.geometry.kernel_elements():
        click(browser, "k", (i, j))
        s = state(browser)
        terms = d.terms[(i, j)]
        live = [t for t in terms if not t.vanishes]
        dead = [t for t in terms if t.vanishes]
        assert {cell(c) for c in marked(s["z"], "hl", "cell")} == {t.output for t in live}
        assert {cell(c) for c in marked(s["z"], "hl-pad", "cell")} == {t.output for t in dead}
        assert {cell(c) for c in marked(s["x"], "hl", "input")} == {t.source for t in live}
        assert {cell(c) for c in marked(s["x"], "hl", "at")} == {padded(d, t.source) for t in live}
        # each vanishing term reads a padded cell of its output's window
        pad_at = {cell(c) for c in marked(s["x"], "hl-pad", "at")}
        assert len(pad_at) == len(dead)
        assert all(any(c in footprint(d, *t.output) for c in pad_at) for t in dead)
        assert marked(s["k"], "sel", "cell") == marked(s["g"], "sel", "cell") == {f"{i},{j}"}
        a = d.geometry.kernel_elements().index((i, j))
        assert s["eqs"] == [f"eq-k-{a}"]
        rows = browser.execute_script(
            f"return Array.from(document.querySelectorAll('#eq-k-{a} tr.term'))"
            ".map(r => [r.hidden, r.classList.contains('vanish')])")
        assert rows == [[False, t.vanishes] for t in terms]
    # the gradient grid selects the same thing
    click(browser, "g", (1, 1))
    assert state(browser)["eqs"] == ["eq-k-0"]
    assert errors(browser) == []


@pytest.mark.parametrize("name", list(CASES))
def test_numbers_on_the_page_match_autograd(browser, pages, name):
    d, path = pages[name]
    load(browser, path)
    s = state(browser)
    g = d.geometry
    (w, h), (kw, kh), (zw, zh) = g.input_shape, g.kernel_shape, g.output_shape
    x = np.zeros((h, w))
    for c in s["x"]:
        if c["input"]:
            i, j = cell(c["input"])
            x[j - 1, i - 1] = float(c["value"])
    k = np.array([float(c["value"]) for c in s["k"]]).reshape(kh, kw)
    model = json.loads(browser.execute_script("return document.getElementById('model').textContent"))
    y = np.array([e["y"] for e in model["z"]]).reshape(zh, zw)
    p = seed.forward_backward(x, k, y, g.stride, g.padding, g.divisor)
    z_page = np.array([float(c["value"]) for c in s["z"]]).reshape(zh, zw)
    grad_page = np.array([float(c["value"]) for c in s["g"]]).reshape(kh, kw)
    np.testing.assert_allclose(z_page, p.z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(grad_page, p.grad, rtol=0, atol=1e-12)
    # what is shown is those numbers to DIGITS significant digits
    for shown, v in zip([c["text"] for c in s["z"]] + [c["text"] for c in s["g"]],
                        list(p.z.ravel()) + list(p.grad.ravel())):
        assert float(shown) == pytest.approx(v, rel=1e-3, abs=1e-12)
    assert model["max_difference"] <= 1e-12
    if d.values is None:  # no values given: random ones, and the page says so
        note = browser.execute_script("return document.getElementById('values-note').textContent")
        assert "No values were given" in note and "seed 0" in note
    assert errors(browser) == []


def test_step_control_slides_the_window_then_adds_up_each_gradient(browser, pages):
    d, path = pages["pad1-random"]
    load(browser, path)
    model = page_model(d)
    nz, nk = len(model["z"]), len(model["k"])
    last = nz + nz * nk + 1
    s = state(browser)
    assert s["step"] == last and "everything computed" in s["label"]
    assert not any("pending" in c["cls"] for c in s["z"] + s["g"])
    press(browser, "\ue011")  # Home: nothing computed yet
    s = state(browser)
    assert s["step"] == 0 and all("pending" in c["cls"] for c in s["z"] + s["g"])
    for n, (x, y) in enumerate(d.geometry.outputs()):  # forward: one output per step
        press(browser, "\ue014")  # ArrowRight
        s = state(browser)
        assert s["step"] == n + 1
        assert [("pending" in c["cls"]) for c in s["z"]] == [m > n for m in range(nz)]
        lit = {cell(a) for a in marked(s["x"], "hl", "at") | marked(s["x"], "hl-pad", "at")}
        assert lit == footprint(d, x, y)
        assert s["eqs"] == [f"eq-z-{n}"]
    for b, term in enumerate(d.terms[(1, 1)]):  # backward: k_{1,1} adds up its terms
        press(browser, "\ue014")
        s = state(browser)
        assert not any("pending" in c["cls"] for c in s["z"])
        shown = model["k"][0]["terms"][b]["running_text"] if b < nz - 1 else model["k"][0]["grad_text"]
        assert s["g"][0]["text"] == shown
        assert all("pending" in c["cls"] for c in s["g"][1:])
        assert marked(s["z"], "cur", "cell") == {f"{term.output[0]},{term.output[1]}"}
        hidden = browser.execute_script(
            "return Array.from(document.querySelectorAll('#eq-k-0 tr.term')).map(r => r.hidden)")
        assert hidden == [m > b for m in range(nz)]
    press(browser, "\ue014")  # on to k_{2,1}: k_{1,1}'s gradient is complete
    s = state(browser)
    assert s["g"][0]["text"] == model["k"][0]["grad_text"] and "pending" not in s["g"][0]["cls"]
    assert marked(s["k"], "sel", "cell") == {"2,1"}
    press(browser, "\ue012")  # ArrowLeft goes back
    assert state(browser)["step"] == nz + nz
    press(browser, "\ue010")  # End
    assert state(browser)["step"] == last
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "first").click()
    assert state(browser)["step"] == 0
    browser.find_element(By.ID, "next").click()
    assert state(browser)["step"] == 1
    browser.execute_script("const s = document.getElementById('step'); s.value = '7';"
                           "s.dispatchEvent(new Event('input'));")
    assert state(browser)["step"] == 7
    browser.find_element(By.ID, "play").click()  # plays on from step 7
    import time

    time.sleep(1.2)
    browser.find_element(By.ID, "play").click()
    assert state(browser)["step"] > 7
    press(browser, "\ue010", "\ue012", "\ue012")  # End, then two steps back; play runs to the end
    browser.find_element(By.ID, "play").click()
    time.sleep(1.5)
    s = state(browser)
    assert s["step"] == last and browser.find_element(By.ID, "play").text == "play"
    assert errors(browser) == []


def test_hover_alone_shows_a_window_and_leaving_restores_the_step(browser, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d, path = pages["stride2-pad1"]
    load(browser, path)
    z = browser.find_element(By.CSS_SELECTOR, 'g[data-role="z"][data-cell="3,2"]')
    ActionChains(browser).move_to_element(z).perform()
    s = state(browser)
    lit = {cell(a) for a in marked(s["x"], "hl", "at") | marked(s["x"], "hl-pad", "at")}
    assert lit == footprint(d, 3, 2) and s["eqs"] == ["eq-z-5"]
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    s = state(browser)
    assert not any(marked(s[r], c, "at" if r == "x" else "cell") for r in "xkzg"
                   for c in ("hl", "hl-pad", "sel"))
    assert s["eqs"] == ["eq-hint"]
    assert errors(browser) == []


def test_equations_render_as_mathml_and_a_screenshot_looks_like_the_page(browser, pages, tmp_path):
    from PIL import Image

    d, path = pages["stride2-pad1"]
    load(browser, path)
    click(browser, "k", (2, 2))
    size = browser.execute_script(
        "const m = document.querySelector('#eq-k-4 math');"
        "return [m.constructor.name, m.getBoundingClientRect().width, m.getBoundingClientRect().height]")
    assert size[0] == "MathMLElement" and size[1] > 50 and size[2] > 10
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as im:
        assert im.size[0] >= 1000
        colors = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    # the term highlight and the selection colours are on screen
    assert {(0xfa, 0xe0, 0xcc), (0xff, 0xe3, 0x8a)} <= colors
    assert errors(browser) == []


# ------------------------------------------------------------- no browser
def test_the_page_is_self_contained(pages):
    d, path = pages["seed"]
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert not re.search(r"\s(src|href)=\"(?!data:)", text)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert text.count("<math>") >= len(d.geometry.outputs()) + len(d.geometry.kernel_elements())
    assert "No values were given" not in text  # the seed's numbers were given
    assert text == html_page(d) and d.values is not None


def test_a_page_without_values_leaves_the_derivation_without_values(pages):
    d, _ = pages["pad1-random"]
    assert d.values is None
    m = page_model(d)
    assert m["values"]["given"] is False and "random (seed 0)" in m["values"]["note"]


def test_page_model_footprints_and_terms_agree_with_the_engine():
    d = explain((5, 4), (3, 2), stride=(2, 1), padding=(1, 2), values="random", seed=2)
    m = page_model(d)
    for z in m["z"]:
        assert {tuple(e["at"]) for e in z["window"]} == footprint(d, *z["cell"])
        for e in z["window"]:
            assert (e["input"] is None) == (d.geometry.source(*e["kernel"], *z["cell"]) is None)
        # the page's equation is the derivation's eq. 5: the same products over the same D
        products = [d.x_(tuple(e["input"])) * d.k_(tuple(e["kernel"]))
                    for e in z["window"] if e["input"] is not None]
        assert sp.simplify(sp.Add(*products) / m["shape"]["divisor"] - d.z[tuple(z["cell"])]) == 0
    v = d.values
    for k in m["k"]:
        i, j = k["cell"]
        assert k["grad"] == v.grad[j - 1, i - 1]
        assert sum(t["value"] for t in k["terms"]) == pytest.approx(k["grad"], abs=1e-15)
        assert k["terms"][-1]["running"] == pytest.approx(k["grad"], abs=1e-15)
        for t in k["terms"]:
            assert t["dl_do"] * t["do_dz"] * t["dz_dk"] == pytest.approx(t["value"], abs=1e-15)
    assert json.loads(json.dumps(m)) == m  # plain data


@pytest.mark.parametrize("argv, message", [
    (["--format", "html"], "--format html writes a page: give --output FILE.html"),
    (["--format", "html", "--output", "{tmp}/page.txt"], "must end in .html or .htm"),
    (["--format", "html", "--output", "{tmp}/no/such/page.html"], "does not exist"),
    (["--animate", "{tmp}/anim.png"], "must end in .gif"),
    (["--animate", "{tmp}/missing/anim.gif"], "does not exist"),
])
def test_output_paths_are_refused_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    import convprop.explainer.derivation as derivation

    def no_work(*args, **kwargs):
        raise AssertionError("the derivation was built before the output path was checked")

    monkeypatch.setattr(derivation, "explain", no_work)
    code = main(["explain", *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explain", "--format", "html", "--output", str(out), "--values", "seed"]) == 0
    assert f"to {out}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "eq-k-3" in text and "eq-k-4" not in text


# ------------------------------------------------ every other derivation kind
KINDS = {
    "transposed": dict(input_shape=(2, 2), kernel_shape=(2, 2), stride=2, padding=1,
                       transposed=True, output_padding=1, values="random", seed=1),
    "groups": dict(input_shape=(3, 2), kernel_shape=(2, 2), channels=(2, 4), groups=2,
                   values="random", seed=2),
    "maxpool": dict(input_shape=(3, 3), kernel_shape=(2, 2), stride=2, padding=1, op="maxpool",
                    values="random", seed=3),
    "avgpool": dict(input_shape=(3, 2), kernel_shape=(3, 2), padding=1, op="avgpool",
                    values="random", seed=3),
    "1-D dilated": dict(input_shape=(6,), kernel_shape=(3,), dilation=(2,), padding=(1,),
                        values="random", seed=4),
    "dilated": dict(input_shape=(3, 3), kernel_shape=(2, 2), dilation=2, padding=1,
                    values="random", seed=5),
}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """``name -> (derivation, path)`` for every kind beyond the one-channel convolution."""
    folder = tmp_path_factory.mktemp("kinds")
    out = {}
    for name, kwargs in KINDS.items():
        d = explain(**kwargs)
        path = folder / f"{name.replace(' ', '-')}.html"
        write_html(d, path)
        out[name] = (d, path)
    return out


def click_n(driver, role, n):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    el = driver.find_element(By.CSS_SELECTOR, f'g[data-role="{role}"][data-n="{n}"]')
    ActionChains(driver).move_to_element(el).click().perform()


def lit_inputs(s, cls) -> set[tuple[int, ...]]:
    """Full input cells ``(c, i, j)`` of the X grid marked ``cls`` (the page's channel and
    shown cell, made full as the layout writes it)."""
    out = set()
    for c in s["x"]:
        if cls in c["cls"] and c["input"]:
            shown = tuple(int(a) for a in c["input"].split(","))
            spatial = shown[-2:] if len(shown) >= 2 and c["nd"] == 2 else (shown[-1], 1)
            out.add((int(c["ch"]), *spatial))
    return out


_STATE_X = """
return Array.from(document.querySelectorAll('g[data-role="x"]')).map(g => ({
  input: g.dataset.input || null, ch: g.dataset.ch, zero: g.dataset.zero || null,
  cls: Array.from(g.classList)}));
"""


def state_x(driver, nd) -> dict:
    s = state(driver)
    s["x"] = [dict(c, nd=nd) for c in driver.execute_script(_STATE_X)]
    for role in ("gx",):
        s[role] = driver.execute_script(
            f"return Array.from(document.querySelectorAll('g[data-role=\"{role}\"]'))"
            ".map(g => ({cell: g.dataset.cell, value: g.dataset.value, cls: Array.from(g.classList),"
            " text: g.querySelector('.v').textContent}))")
    return s


def shown_key(L, cell) -> str:
    return ",".join(str(c) for c in L.show(cell))


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_lights_the_window_the_layout_says(browser, kinds, name):
    d, path = kinds[name]
    L = d.layout
    load(browser, path)
    for n, out in enumerate(L.outputs()):
        click_n(browser, "z", n)
        s = state_x(browser, L.nd)
        taps = L.taps(out)
        assert lit_inputs(s, "hl") == {t.input for t in taps if t.input is not None}, out
        zeros = sorted(t.zero for t in taps if t.input is None)
        assert sorted(c["zero"] for c in s["x"] if "hl-pad" in c["cls"]) == zeros, out
        assert marked(s["k"], "hl", "cell") == {shown_key(L, t.kernel) for t in taps if t.kernel}
        assert marked(s["z"], "sel", "cell") == {shown_key(L, out)}
        assert s["eqs"] == [f"eq-z-{n}"]
        if L.op == "maxpool":  # the chosen first maximum is marked
            picked = {c["input"] for c in s["x"] if "pick" in c["cls"]}
            assert picked == {",".join(map(str, d.values.winners[L.show(out)]))}
    assert errors(browser) == []


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_lights_the_terms_of_each_input_gradient(browser, kinds, name):
    d, path = kinds[name]
    L = d.layout
    load(browser, path)
    triples = L.triples()
    for a, inp in enumerate(L.inputs()):
        click_n(browser, "gx", a)
        s = state_x(browser, L.nd)
        # the outputs whose windows read x, and the weights that multiply it there
        reads = [(o, k) for (o, k, i) in triples if i == inp]
        assert marked(s["z"], "hl", "cell") == {shown_key(L, o) for o, _ in reads}, inp
        assert marked(s["k"], "hl", "cell") == {shown_key(L, k) for _, k in reads if k}, inp
        assert lit_inputs(s, "sel") == {inp}
        assert s["eqs"] == [f"eq-x-{a}"]
        if L.transposed:  # the adjoint view: the outputs x scatters into, with the same weights
            scattered = L.scatter(inp)
            assert marked(s["z"], "hl", "cell") == {shown_key(L, o) for o, _ in scattered}
            assert marked(s["k"], "hl", "cell") == {shown_key(L, k) for _, k in scattered}
        if L.op == "maxpool":  # the outputs that send their gradient to x are marked
            picks = {shown_key(L, o) for o, _ in reads
                     if d.values.winners[L.show(o)] == L.show(inp)}
            assert marked(s["z"], "pick", "cell") == picks
    text = browser.execute_script("return document.getElementById('eq-x-0').textContent")
    sentence = {"conv": "transposed convolution of ∂L/∂Z with K",
                "conv_transpose": "direct convolution of ∂L/∂Z with K",
                "maxpool": "first maximum", "avgpool": "every input of the window"}[L.op]
    assert sentence in text
    assert errors(browser) == []


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kinds_numbers_match_autograd(browser, kinds, name):
    d, path = kinds[name]
    L, v = d.layout, d.values
    load(browser, path)
    s = state_x(browser, L.nd)
    z_full = L.to_full("z", v.z)
    z_page = [float(c["value"]) for c in s["z"]]
    assert z_page == [z_full[L.index(o)] for o in L.outputs()]
    gx_ag = L.to_full("x", v.grad_x_autograd)
    np.testing.assert_allclose([float(c["value"]) for c in s["gx"]],
                               [gx_ag[L.index(i)] for i in L.inputs()], rtol=0, atol=1e-12)
    if not L.pooling:
        gk_ag = L.to_full("k", v.grad_autograd)
        np.testing.assert_allclose([float(c["value"]) for c in s["g"]],
                                   [gk_ag[L.index(k)] for k in L.kernels()], rtol=0, atol=1e-12)
    for c in s["gx"]:
        assert float(c["text"]) == pytest.approx(float(c["value"]), rel=1e-3, abs=1e-12)
    assert v.max_difference <= 1e-12
    assert errors(browser) == []


def test_pooling_steps_through_each_input_gradient(browser, kinds):
    d, path = kinds["maxpool"]
    load(browser, path)
    m = page_model(d)
    nz, nb = len(m["z"]), m["steps"]["backward"]
    assert nb == sum(len(e["terms"]) for e in m["gx"]) and not m["k"]
    press(browser, "\ue011")  # Home
    for _ in range(nz + 1):
        press(browser, "\ue014")  # ArrowRight
    s = state_x(browser, 2)
    assert s["step"] == nz + 1 and "backward: ∂L/∂x₁,₁" in s["label"]
    assert marked(s["gx"], "sel", "cell") == {"1,1"}
    assert all("pending" in c["cls"] for c in s["gx"][1:])
    assert errors(browser) == []


@pytest.mark.parametrize("name", ["transposed", "groups", "maxpool", "1-D dilated"])
def test_a_screenshot_of_every_kind(browser, kinds, name, tmp_path):
    from PIL import Image

    d, path = kinds[name]
    load(browser, path)
    click_n(browser, "z", 1)
    shot = tmp_path / "kind.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as im:
        colors = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert {(0xd6, 0xe3, 0xf5), (0xff, 0xe3, 0x8a)} <= colors  # the window and the selection
    assert errors(browser) == []


def test_page_model_of_the_transposed_convolution_is_the_equivalent_direct_convolution():
    d = explain(**KINDS["transposed"])
    L, m = d.layout, page_model(d)
    # the grid: inputs S apart after d(K - 1) - P zeros, the rest inserted zeros or padding
    assert m["shape"]["padded"] == [o + k - 1 for o, k in zip(L.output_shape, L.kernel_shape)]
    real = {tuple(e["input"]): tuple(e["at"]) for e in m["x"] if e["input"]}
    (pw, ph) = L.equivalent_padding()
    assert real == {(i, j): (pw + (i - 1) * 2 + 1, ph + (j - 1) * 2 + 1) for (i, j) in real}
    assert {e["zero"] for e in m["x"] if not e["input"]} == {"padding", "inserted"}
    # every window reads what the adjoint view scatters: the same (output, weight, input) triples
    scatter = {(o, k, i) for i in L.inputs() for o, k in L.scatter(i)}
    assert L.triples() == scatter
    assert json.loads(json.dumps(m)) == m


@pytest.mark.parametrize("argv", [
    ["--transposed", "--stride", "2"], ["--channels", "2,2", "--groups", "2"],
    ["--op", "maxpool", "--stride", "2"], ["--input", "5", "--kernel", "3"],
])
def test_cli_writes_the_page_for_every_kind(argv, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explain", *argv, "--format", "html", "--output", str(out)]) == 0, \
        capsys.readouterr().err
    assert out.read_text(encoding="utf-8").count('data-role="gx"') >= 3


def test_clicking_a_bias_gradient_lights_every_output_of_its_channel(browser, kinds):
    d, path = kinds["groups"]
    L, v = d.layout, d.values
    load(browser, path)
    for c in range(1, L.out_channels + 1):
        click_n(browser, "gb", c - 1)
        s = state(browser)
        assert marked(s["z"], "hl", "cell") == {shown_key(L, o) for o in L.outputs() if o[0] == c}
        assert s["eqs"] == [f"eq-b-{c - 1}"]
    values = browser.execute_script(
        "return Array.from(document.querySelectorAll('g[data-role=\"gb\"]')).map(g => g.dataset.value)")
    np.testing.assert_allclose([float(a) for a in values], v.grad_b_autograd, rtol=0, atol=1e-12)
    assert errors(browser) == []


_STATE_ROLE = """
return Array.from(document.querySelectorAll(`g[data-role="${arguments[0]}"]`)).map(g => ({
  cell: g.dataset.cell, value: g.dataset.value, cls: Array.from(g.classList),
  text: g.querySelector('.v').textContent, tag: g.querySelector('.tag').textContent}));
"""


def role_state(driver, role) -> list[dict]:
    return driver.execute_script(_STATE_ROLE, role)


def go_to_step(driver, n):
    driver.execute_script("const s = document.getElementById('step'); s.value = String(arguments[0]);"
                          "s.dispatchEvent(new Event('input'));", n)


def test_the_step_control_adds_up_each_bias_gradient_after_the_kernels(browser, kinds):
    d, path = kinds["groups"]
    L = d.layout
    m = page_model(d)
    nz, nk = len(m["z"]), sum(len(e["terms"]) for e in m["k"])
    plan = m["steps"]["plan"]
    assert [p[0] for p in plan] == ["k"] * nk + ["b"] * sum(len(e["terms"]) for e in m["gb"])
    load(browser, path)
    step = nz + nk  # the last term of the last kernel element: ∂L/∂b still pending
    go_to_step(browser, step)
    assert all("pending" in c["cls"] for c in role_state(browser, "gb"))
    for a, g in enumerate(m["gb"]):
        outputs = [o for o in L.outputs() if o[0] == a + 1]  # the engine: b_c feeds channel c
        assert [t["output"] for t in g["terms"]] == [list(L.show(o)) for o in outputs]
        for b, t in enumerate(g["terms"]):
            press(browser, "\ue014")  # ArrowRight
            step += 1
            s, gb = state(browser), role_state(browser, "gb")
            assert s["step"] == step and f"∂L/∂b{'₁₂₃₄'[a]}, term {b + 1} of" in s["label"]
            assert marked(s["z"], "hl", "cell") == {shown_key(L, o) for o in outputs[:b + 1]}
            assert marked(s["z"], "cur", "cell") == {shown_key(L, outputs[b])}
            assert marked(gb, "sel", "cell") == {str(a + 1)}
            shown = t["running_text"] if b < len(g["terms"]) - 1 else g["grad_text"]
            assert gb[a]["text"] == shown
            assert all("pending" in c["cls"] for c in gb[a + 1:])
            assert not any("pending" in c["cls"] for c in gb[:a] + s["g"])  # ∂L/∂K is done
            assert all("pending" in c["cls"] for c in role_state(browser, "gx"))
            hidden = browser.execute_script(
                f"return Array.from(document.querySelectorAll('#eq-b-{a} tr.term'))"
                ".map(r => r.hidden)")
            assert hidden == [n > b for n in range(len(g["terms"]))]
    press(browser, "\ue014")
    s = state(browser)
    assert s["step"] == step + 1 == nz + len(plan) + 1 and "everything computed" in s["label"]
    assert [c["text"] for c in role_state(browser, "gb")] == [e["grad_text"] for e in m["gb"]]
    assert errors(browser) == []


@pytest.mark.parametrize("name", ["transposed", "1-D transposed, channels"])
def test_the_scatter_diagram_lights_the_outputs_each_input_feeds(browser, kinds, name, tmp_path):
    if name in kinds:
        d, path = kinds[name]
    else:  # one more kind for this test only
        d = explain((3,), (3,), stride=(2,), dilation=(2,), transposed=True, channels=(2, 2),
                    groups=2, values="random", seed=6)
        path = tmp_path / "scatter.html"
        write_html(d, path)
    L = d.layout
    m = page_model(d)
    assert len(m["scatter"]) == len(L.inputs()) and page_model(kinds["groups"][0])["scatter"] == []
    load(browser, path)
    for a, inp in enumerate(L.inputs()):
        click_n(browser, "sx", a)
        s, sz = state(browser), role_state(browser, "sz")
        targets = L.scatter(inp)  # the engine: x_n k_t goes to (n - 1)S + (t - 1)d + 1 - P
        assert marked(sz, "hl", "cell") == {shown_key(L, o) for o, _ in targets}, inp
        assert {c["cell"]: c["tag"] for c in sz if "hl" in c["cls"]} == {
            shown_key(L, o): "k" + ",".join(str(n).translate(str.maketrans("0123456789",
                                                                           "₀₁₂₃₄₅₆₇₈₉"))
                                            for n in L.show(k)) for o, k in targets}
        assert marked(s["k"], "hl", "cell") == {shown_key(L, k) for _, k in targets}
        assert marked(role_state(browser, "sx"), "sel", "cell") == {shown_key(L, inp)}
        assert s["eqs"] == [f"eq-s-{a}"]
        v = d.values  # each target's number is x·k/D from the derivation's own values
        for t, (o, k) in zip(m["scatter"][a]["targets"], targets):
            assert t["output"] == list(L.show(o))
            want = v.at("x", L.show(inp)) * v.at("k", L.show(k)) / L.divisor
            assert t["value"] == pytest.approx(want, abs=1e-15)
    # every product the scatter view lists is one the forward windows read, and back
    listed = {(tuple(t["output"]), tuple(t["kernel"]), tuple(e["cell"]))
              for e in m["scatter"] for t in e["targets"]}
    assert listed == {(L.show(o), L.show(k), L.show(i)) for o, k, i in L.triples()}
    assert errors(browser) == []
