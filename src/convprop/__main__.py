"""``python -m convprop``: the same as the ``convprop`` command."""

from .cli import main

raise SystemExit(main())
