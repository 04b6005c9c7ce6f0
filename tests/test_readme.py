"""Every Python block in the README runs as written, in a fresh interpreter and an empty folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_as_written(index: int, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"README python block {index + 1} failed:\n{BLOCKS[index]}\n{r.stderr}"


def test_readme_links_stay_inside_the_repository() -> None:
    """A plain clone has no ``../shared``: every relative link must resolve inside the repo."""
    root = README.parent
    targets = re.findall(r"\]\(([^)#\s]+)", README.read_text(encoding="utf-8"))
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert local, "expected at least the link to docs/founding-document.md"
    for target in local:
        path = (root / target).resolve()
        assert path.is_relative_to(root) and path.exists(), target
