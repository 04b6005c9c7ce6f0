"""``docs/pytorch-coverage.md`` is generated from the code: it must be what
``python docs/make_coverage.py`` writes today, and it must name everything convprop exports."""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import convprop
import convprop.nn.utils
import convprop.optim.lr_scheduler

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "make_coverage.py"
DOC = ROOT / "docs" / "pytorch-coverage.md"
REGENERATE = "docs/pytorch-coverage.md is out of date: run `python docs/make_coverage.py` and commit it"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


make_coverage = _load_script()
TEXT = DOC.read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    """The document's ``## `` sections, by title."""
    parts = re.split(r"^## (.+)$", TEXT, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _same_torch(torch) -> None:
    """Skip when the installed PyTorch is not the one the document was generated against."""
    recorded = re.search(r"against PyTorch ([\w.]+)", TEXT)
    assert recorded, "the document does not say which PyTorch it was generated against"
    installed = torch.__version__.split("+")[0]
    if installed != recorded.group(1):
        pytest.skip(f"the document was generated against PyTorch {recorded.group(1)}; this is "
                    f"{installed} (the test extra pins the one CI uses)")


def test_the_committed_document_is_what_the_script_writes(torch) -> None:
    _same_torch(torch)
    fresh = make_coverage.render()
    if fresh != TEXT:
        diff = difflib.unified_diff(TEXT.splitlines(), fresh.splitlines(), "committed", "generated",
                                    lineterm="", n=1)
        pytest.fail(REGENERATE + "\n" + "\n".join(list(diff)[:40]))


def test_the_hand_lists_agree_with_pytorch_and_convprop(torch) -> None:
    """Every name in the script's scope lists exists in PyTorch, and nothing convprop has is
    declared out of scope."""
    _same_torch(torch)
    trouble = make_coverage.problems()
    assert not trouble, ("fix the hand lists (TOP_LEVEL, TENSOR, OUT_OF_SCOPE, NOT_API) in "
                         "docs/make_coverage.py:\n" + "\n".join(trouble))


def test_every_public_name_is_in_its_section() -> None:
    """Runs without PyTorch: each name convprop exports appears, quoted, in its area's section."""
    sections = _sections()
    for area in make_coverage.areas():
        assert area.title in sections, f"no section {area.title!r}: {REGENERATE}"
        absent = sorted(n for n in area.convprop_names() if f"`{n}`" not in sections[area.title])
        assert not absent, f"{area.title}: {absent} not in the document; {REGENERATE}"


def test_every_name_in_convprops_public_lists_is_in_the_document() -> None:
    """The public lists themselves, read here rather than through the script."""
    lists = {
        "convprop": convprop.__all__,
        "convprop.nn": convprop.nn.__all__,
        "convprop.functional": convprop.functional.__all__,
        "convprop.optim": convprop.optim.__all__,
        "convprop.optim.lr_scheduler": convprop.optim.lr_scheduler.__all__,
        "convprop.nn.utils": convprop.nn.utils.__all__,
        "convprop.Tensor": [n for n in dir(convprop.Tensor) if not n.startswith("_")],
    }
    for where, names in lists.items():
        absent = sorted(n for n in names if f"`{n}`" not in TEXT)
        assert not absent, f"{where}: {absent} not in the document; {REGENERATE}"


def test_the_document_states_its_scope_and_how_to_regenerate() -> None:
    assert "python docs/make_coverage.py" in TEXT.split("\n## ")[0]
    assert "**Scope.**" in TEXT
    sections = _sections()
    assert "Out of scope" in sections
    for topic in ("Recurrent networks", "Transformers and attention", "Embeddings", "Sparse tensors",
                  "Quantization", "Distributed", "Devices other than the CPU", "Compilation",
                  "Complex"):
        assert f"### {topic}" in sections["Out of scope"], topic


def test_each_pytorch_name_is_in_one_place_only(torch) -> None:
    """A table row, the missing list or the out-of-scope list: never two of them."""
    _same_torch(torch)
    for area in make_coverage.areas():
        c = make_coverage.compare(area)
        rows = {t for g in c.groups for t, _, _ in g.rows if t}
        missing = {n for g in c.groups for n in g.missing}
        out = set(c.out_of_scope)
        assert not (rows & missing or rows & out or missing & out), area.title
        assert rows | missing | out == c.torch_names, area.title


def test_table_rows_have_three_cells() -> None:
    """A ``|`` inside a note (``a | b``) is escaped, or the table would break.  (Four cells
    in the tables with the "double backward" column: as many as their header.)"""
    rows = [line for line in TEXT.splitlines() if line.startswith("| `") or line.startswith("| —")
            or line.startswith("| PyTorch | convprop |")]
    assert rows
    cells = 5
    for row in rows:
        if "](#" in row:  # the summary table
            continue
        if row.startswith("| PyTorch | convprop |"):
            cells = len(row.split("|"))
            assert cells in (5, 6), row
            continue
        assert len(re.split(r"(?<!\\)\|", row)) == cells, row


def test_the_readme_links_the_document_after_using_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", readme, re.M)
    section = "What convprop has, beside PyTorch"
    assert section in headings and headings.index(section) == headings.index("Using it") + 1
    body = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    assert "](docs/pytorch-coverage.md)" in body and "out of scope" in body

