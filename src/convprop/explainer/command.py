"""``convprop explain``: its options and what it writes (the command sits above the whole family).

:mod:`.derivation` is the model; this module parses the options (:mod:`.options` checks
their combinations), refuses bad output paths before any work, builds the derivation and
hands it to the renderer the user asked for (:mod:`.render`, :mod:`.page`, :mod:`.animate`,
:mod:`.figures`, :mod:`.relationships`).  Nothing in the family imports this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._args import check_output
from . import derivation
from .derivation import TOLERANCE
from .options import channels_arg, options, sizes_arg

FORMATS = ("text", "markdown", "latex")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``convprop explain`` options.  Shapes are WxH: width first, as S_X = (X_W, X_H).

    A single number for ``--input`` means a 1-D input; for the other sizes it means the
    same number along every axis.
    """
    from .._args import divisor_arg

    parser.add_argument("--input", type=sizes_arg(1), default=(3, 3), metavar="WxH|W|WxHxD",
                        help="input shape S_X = (X_W, X_H), width x height (default 3x3); "
                             "one number W gives the 1-D derivation (write WxW for a square), "
                             "WxHxD the 3-D one (text, markdown and latex only)")
    parser.add_argument("--kernel", type=sizes_arg(1), default=None, metavar="WxH|K|WxHxD",
                        help="kernel shape S_K = (K_W, K_H), width x height (default 2x2, "
                             "2 in 1-D, 2x2x2 in 3-D); one number means the same on every axis")
    parser.add_argument("--stride", type=sizes_arg(1), default=(1,), metavar="S|WxH",
                        help="stride S, or S_W x S_H (default 1)")
    parser.add_argument("--padding", type=sizes_arg(0), default=(0,), metavar="P|WxH",
                        help="zero padding P on every side, or P_W x P_H (default 0)")
    parser.add_argument("--dilation", type=sizes_arg(1), default=(1,), metavar="D|WxH",
                        help="dilation d: the kernel's taps d apart, an effective kernel of "
                             "K + (K-1)(d-1) (default 1, none)")
    parser.add_argument("--divisor", type=divisor_arg, default=None, metavar="kernel|stride|N",
                        help="what eq. 5 divides by: 'kernel' (K_W*K_H, the document's worked "
                             "equations; default), 'stride' (S_W*S_H, eq. 5 as printed) or a "
                             "number (1 = standard convolution); not with --op pooling")
    parser.add_argument("--channels", type=channels_arg, default=None, metavar="CIN,COUT",
                        help="input and output channels: every z sums over its input channels, "
                             "one dL/dK table per (out, in) pair, and a bias b per output channel")
    parser.add_argument("--groups", type=int, default=1, metavar="G",
                        help="groups G (divides both channel counts; default 1)")
    parser.add_argument("--transposed", action="store_true",
                        help="the transposed convolution, derived as the adjoint of the forward "
                             "and as the guide's equivalent direct convolution, shown to agree")
    parser.add_argument("--output-padding", type=sizes_arg(0), default=(0,), metavar="A|WxH",
                        help="with --transposed: extra output rows/columns after (A < S or d)")
    parser.add_argument("--op", choices=("conv", "maxpool", "avgpool"), default="conv",
                        help="conv (default), maxpool or avgpool (one channel, same shape options)")
    parser.add_argument("--relationships", action="store_true",
                        help="print Dumoulin & Visin's relationships for this shape instead: its "
                             "case, output size and the transposed convolution's equivalent")
    parser.add_argument("--format", choices=(*FORMATS, "html"), default="text",
                        help="text (default), markdown (GitHub math), latex (a full document) or "
                             "html (an interactive offline page; needs --output FILE.html)")
    parser.add_argument("--values", default=None, metavar="seed|random|FILE",
                        help="evaluate everything with numbers: the demo's ('seed'), random ones, "
                             "or a .npz/.json file with arrays x, k, y (b with --channels) in "
                             "the shown layout; the symbolic gradients are then checked against "
                             "convprop's autograd")
    parser.add_argument("--seed", type=int, default=None, help="seed for --values random")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write the derivation to FILE instead of stdout")
    parser.add_argument("--figure", metavar="FILE", default=None,
                        help="also draw the kernel footprints and gradient cells as a PNG")
    parser.add_argument("--animate", metavar="FILE.gif", default=None,
                        help="also write a GIF: the window sliding forward, each dL/dk adding up "
                             "its terms")


def run(args: argparse.Namespace) -> int:
    """``convprop explain``: print (or write) the derivation; exit 1 if the cross-check fails."""
    if args.format == "html" and not args.output:
        raise ValueError("--format html writes a page: give --output FILE.html")
    check_output(args.output, "--output", (".html", ".htm") if args.format == "html" else ())
    check_output(args.figure, "--figure", (".png",))
    check_output(args.animate, "--animate", (".gif",))
    kwargs = options(args)
    if args.relationships:
        from .relationships import relationships

        if args.values is not None or args.figure:
            raise ValueError("--relationships prints the guide's relationships only; leave out "
                             "--values and --figure")
        r = relationships(**{k: v for k, v in kwargs.items() if k != "divisor"})
        out = {"text": r.to_text, "markdown": r.to_markdown, "latex": r.to_latex}[args.format]()
        _emit(out, args.output, "relationships")
        return 0
    d = derivation.explain(**kwargs, values=args.values, seed=args.seed)  # (tests patch it)
    if args.format == "text":
        out = d.to_text()
    elif args.format == "markdown":
        out = d.to_markdown()
    elif args.format == "html":
        from .page import html_page

        out = html_page(d)
    else:
        out = d.to_latex(standalone=True)
    _emit(out, args.output, f"{args.format} derivation")
    if args.figure:
        d.figure(args.figure)
        print(f"wrote figure to {args.figure}")
    if args.animate:
        from .animate import write_gif

        write_gif(d, args.animate)
        print(f"wrote animation to {args.animate}")
    if d.values is not None and not d.values.max_difference <= TOLERANCE:
        print(f"convprop: symbolic and autograd gradients differ by {d.values.max_difference:.3g}",
              file=sys.stderr)
        return 1
    return 0


def _emit(out: str, path: str | None, what: str) -> None:
    if path:
        Path(path).write_text(out + "\n", encoding="utf-8")
        print(f"wrote {what} to {path}")
    else:
        print(out)
