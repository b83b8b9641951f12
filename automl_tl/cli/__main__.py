"""``python -m automl_tl.cli``: the ``automl-tl`` command."""

import sys

from automl_tl.cli import main

sys.exit(main())
