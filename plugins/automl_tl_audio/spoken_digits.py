"""The espeak-ng spoken-digit dataset, kept importable here for scripts that name it so; it lives in
the core (:mod:`automl_tl.spoken_digits`) because the core's ``demo`` makes it and the core imports
no plugin."""

from __future__ import annotations

import sys

from automl_tl.spoken_digits import (DEFAULT_PITCHES, DEFAULT_SPEEDS, DEFAULT_VOICES, WORDS, main, make_dataset,
                                     voice_id)

__all__ = ["DEFAULT_PITCHES", "DEFAULT_SPEEDS", "DEFAULT_VOICES", "WORDS", "main", "make_dataset", "voice_id"]

if __name__ == "__main__":
    sys.exit(main())
