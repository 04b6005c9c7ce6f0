"""The ``convprop`` command line: wiring only.

Each subcommand lives in its own module, which exposes ``add_arguments(parser)``
and ``run(args) -> int`` and is imported only when that subcommand is used (so
``convprop demo`` needs neither SymPy nor matplotlib unless asked).  Adding a
subcommand is one line in :data:`COMMANDS`.

Errors never end in a traceback: bad arguments give one line and exit status 2
(argparse's usage block is left out), as do errors the command raises from the
values it was given (``ValueError``, ``TypeError``, ``OSError``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

# (name, module, help): the module provides add_arguments(parser) and run(args) -> int
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "convprop.demo",
     "the founding document's 3x3 / 2x2 example with numbers, then K trained by gradient descent"),
    ("explain", "convprop.explainer.command",
     "the document's derivation, equation by equation, for any shape (SymPy)"),
    ("train", "convprop.train",
     "train a LeNet-style CNN (convprop.nn + optim) on scikit-learn's bundled digits"),
    ("bench", "convprop.bench",
     "time convprop against PyTorch CPU on a suite of real layers, in one process"),
)

# optional packages, imported only where used: module name -> the extra that installs it
OPTIONAL = {"sympy": "cli", "matplotlib": "cli", "tqdm": "cli", "sklearn": "cli", "scipy": "cli",
            "torch": "test"}

EPILOG = ("Shapes are written WxH, width first, as the document's S_X = (X_W, X_H); "
          "x_{i,j} is column i, row j, counted from 1.")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``prog: error: message``.

    A value that starts with a minus and a digit (``--input -3x3``, ``--seed -1``) is
    taken as the option's value, so that its own check can say what is wrong with it,
    instead of argparse's "expected one argument".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` has its module imported."""
    from . import __version__

    parser = _Parser(prog="convprop", epilog=EPILOG,
                     description="Convolution forward and backward propagation, explained.")
    parser.add_argument("--version", action="version", version=f"convprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, module, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_, epilog=EPILOG)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``convprop``; returns the exit status (0 ok, 1 failure, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # σ, ∂ and · degrade to '?' on a non-UTF-8 terminal
        if hasattr(stream, "reconfigure") and "utf" not in (stream.encoding or "").lower():
            stream.reconfigure(errors="replace")
    try:
        parser = build_parser(argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version and argument errors
            return e.code if isinstance(e.code, int) else 2
        if args.command is None:
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except BrokenPipeError:  # e.g. `convprop explain | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except ImportError as e:
        if e.name not in OPTIONAL:
            return _internal(e)
        _fail(f"this command needs {e.name}, one of convprop's optional extras: "
              f"pip install 'convprop[{OPTIONAL[e.name]}]'")
        return 1
    except (ValueError, TypeError, OSError) as e:
        _fail(str(e))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        return _internal(e)


def _internal(e: BaseException) -> int:
    """A bug, not a bad argument: one line, or the traceback with CONVPROP_TRACEBACK=1."""
    if os.environ.get("CONVPROP_TRACEBACK"):
        raise e
    _fail(f"internal error: {type(e).__name__}: {e} (set CONVPROP_TRACEBACK=1 for the traceback)")
    return 1


def _fail(message: str) -> None:
    print(f"convprop: error: {' '.join(message.split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
