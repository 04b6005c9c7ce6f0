"""The explanation family: the symbolic derivation, its renderers, figures and text layout.

Modules: :mod:`.derivation` (the SymPy model and ``convprop explain``), :mod:`.render`
(text, Markdown, LaTeX), :mod:`.figures` (matplotlib), :mod:`.text` (layout helpers at
the bottom, imported by the others and by ``convprop demo``).  Nothing here imports the
CLI, and importing this package loads neither SymPy nor matplotlib.
"""
