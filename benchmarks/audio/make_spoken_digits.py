#!/usr/bin/env python
"""Synthesise the espeak-ng spoken-digit dataset (see ``automl_tl.spoken_digits``).

    python benchmarks/audio/make_spoken_digits.py --out /tmp/digits
"""

import sys

from automl_tl.spoken_digits import DEFAULT_PITCHES, DEFAULT_SPEEDS, DEFAULT_VOICES, make_dataset, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
