"""Convolution suite: convprop vs PyTorch CPU, forward and forward + backward, one table.

Usage: ``python benchmarks/conv_suite.py [--quick] [--layers NAME,...] [--repeats N]``.
The logic lives in :mod:`convprop.bench` (also ``convprop bench``).
"""

import sys

from convprop.bench import main

if __name__ == "__main__":
    sys.exit(main())
