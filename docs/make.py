"""Regenerate the README's pictures of ``convprop explain``: ``python docs/make.py``.

* ``docs/explain-page.png``: the interactive page (``--format html``) for a 4×4 input,
  3×3 kernel, stride 2, padding 1, with ∂L/∂k_{1,1} clicked, in headless Chromium
  (Debian's ``chromium`` and ``chromium-driver``, and ``pip install selenium``).
* ``docs/explain.gif``: the animation (``--animate``) of the founding document's example,
  the same as ``convprop explain --values seed --animate docs/explain.gif``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from convprop.explainer.animate import write_gif
from convprop.explainer.derivation import explain
from convprop.explainer.page import write_html

DOCS = Path(__file__).resolve().parent


def screenshot(html: Path, png: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
              "--window-size=1240,1010", "--hide-scrollbars"):
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(html.as_uri())
        k11 = driver.find_element(By.CSS_SELECTOR, 'g[data-role="k"][data-cell="1,1"]')
        ActionChains(driver).move_to_element(k11).click().perform()
        driver.save_screenshot(str(png))
    finally:
        driver.quit()
    with Image.open(png) as im:  # a palette keeps the PNG small; the page has few colours
        im.convert("RGB").quantize(colors=128).save(png, optimize=True)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        write_html(explain((4, 4), (3, 3), stride=2, padding=1, values="random", seed=2), page)
        screenshot(page, DOCS / "explain-page.png")
    frames = write_gif(explain(values="seed"), DOCS / "explain.gif")
    for name in ("explain-page.png", "explain.gif"):
        print(f"wrote docs/{name} ({(DOCS / name).stat().st_size // 1024} KB)")
    print(f"the GIF has {frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
