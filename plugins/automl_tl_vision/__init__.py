"""Built-in vision plugin: the image modality and keras.applications backbones.

Registered through the ``automl_tl`` entry-point group like any third-party plugin.
"""

from automl_tl import hookimpl

__version__ = "0.1.0"


@hookimpl
def automl_tl_register_modalities(registry):
    from ._modality import ImageModality

    registry.add(ImageModality())


@hookimpl
def automl_tl_register_backbones(registry):
    from ._backbones import specs

    for spec in specs():
        registry.add(spec)
