"""The explanation family: the symbolic derivation, its renderers, figures and text layout.

Modules: :mod:`.model` (the SymPy model, which imports none of its renderers),
:mod:`.derivation` (:func:`~.derivation.explain` and the ``Derivation`` with its
renderings, above the model and the renderers), :mod:`.layout`
(which input, kernel and output cells meet, for every operation), :mod:`.values`
(numbers and the autograd cross-check), :mod:`.options` (size limits and option rules),
:mod:`.sections` (what a derivation says) with :mod:`.notation` (its building blocks)
and :mod:`.render` (text, Markdown, LaTeX), :mod:`.relationships` (the guide's
relationships), :mod:`.figures` (matplotlib), :mod:`.text` (layout helpers at the
bottom, imported by the others and by ``convprop demo``).  Nothing here imports the
CLI, and importing this package loads neither SymPy nor matplotlib.
"""
