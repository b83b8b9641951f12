"""Compiled programs kept across processes (issue 33): on the JAX backend, XLA programs are
written to a folder inside the embedding cache (``jax/``) and read back by the next process that
needs the same program, through JAX's own persistent compilation cache (a well-kept part of JAX:
keyed by the program, the device and the JAX version; written atomically; safe for several
processes). Turned on by every fit (:func:`automl_tl.preparation.prepare`), in its cache folder.

Why it matters: every process compiles each program it runs once, and on JAX that includes
the small programs that draw a backbone's initial weights, one per weight shape (MobileNetV2: 51
programs), before the pretrained values replace them; a fit compiles a backbone's forward pass
for the profile, the probe and the delivered model too. A CLI fit is one process, and so is each
search worker: without this each paid all of it again.

``AUTOML_TL_JAX_CACHE=0`` turns it off; a folder set by the user through JAX
(``JAX_COMPILATION_CACHE_DIR`` / ``jax.config``) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["enable_persistent_compilation_cache", "JAX_CACHE_ENV"]

JAX_CACHE_ENV = "AUTOML_TL_JAX_CACHE"


def enable_persistent_compilation_cache(folder: str | os.PathLike | None = None) -> Path | None:
    """Keep JAX's compiled programs in ``folder`` (default: ``jax`` in the embedding cache);
    the folder in use, or None off the JAX backend or when turned off."""
    import keras

    if keras.backend.backend() != "jax" or os.environ.get(JAX_CACHE_ENV, "").strip() == "0":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # the user's own choice
        return Path(jax.config.jax_compilation_cache_dir)
    if folder is None:
        from automl_tl.cache import default_cache_dir

        folder = default_cache_dir() / "jax"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # an optimisation only: a folder that cannot be made costs compiles, not the fit
        import logging

        logging.getLogger("automl_tl").warning("compiled programs are not kept (%s): %s", folder, exc)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # JAX keeps only programs that took a second or more to compile by default; a backbone's
    # initial-weight programs take 0.05-0.3 s each and there are dozens
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return Path(folder)
