"""Built-in vision plugin: the image modality and keras.applications backbones.

Registered through the ``automl_tl`` entry-point group like any third-party plugin. Its helpers
(``ImagePreprocess``, ``image_input``, ``make_image_adapter``, ``regex_blocks``, ``load_into_mobilenetv2``) are
public so that other plugins can build image backbones the same way (see docs/plugins.md).
"""

from automl_tl import hookimpl

__version__ = "0.1.0"
__all__ = ["ImagePreprocess", "image_input", "make_image_adapter", "regex_blocks", "load_into_mobilenetv2",
           "ImageModality", "read_torch_state_dict", "apply_state_dict", "torch_checkpoint_loader",
           "TorchUserPath", "mobilenetv2_torch_features", "efficientnet_lite0_features"]

_LAZY = {"ImagePreprocess": "._layers", "image_input": "._layers", "make_image_adapter": "._backbones",
         "regex_blocks": "._backbones", "load_into_mobilenetv2": "._backbones",
         "ImageModality": "._modality", "read_torch_state_dict": "._torch_convert",
         "apply_state_dict": "._torch_convert", "torch_checkpoint_loader": "._torch_convert",
         "TorchUserPath": "._torch_convert",
         "mobilenetv2_torch_features": "._backbones", "efficientnet_lite0_features": "._efficientnet_lite"}


def __getattr__(name):  # keep plugin import cheap: Keras loads only when a helper is used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


@hookimpl
def automl_tl_register_modalities(registry):
    from ._modality import ImageModality

    registry.add(ImageModality())


@hookimpl
def automl_tl_register_backbones(registry):
    from ._backbones import specs
    from ._vit import vit_specs

    for spec in specs():
        registry.add(spec)
    for spec in vit_specs():
        registry.add(spec)
