"""Shared test settings: quiet TensorFlow, no network probes, and caches of the test session's own.

Nothing a user's earlier runs left in their caches is read: the embedding cache
(``AUTOML_TL_CACHE_DIR``), Keras' home (``~/.keras``: its config and downloaded weights) and the
Hugging Face cache (``~/.cache/huggingface``) and the knowledge base of past searches all point into one temporary folder for the session,
set here, before anything imports Keras or huggingface_hub. Weights come from installed packages.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOML_TL_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_HOME = tempfile.mkdtemp(prefix="automl-tl-tests-")
os.environ["AUTOML_TL_CACHE_DIR"] = os.path.join(_HOME, "embedding-cache")
os.environ["KERAS_HOME"] = os.path.join(_HOME, "keras")
os.environ["HF_HOME"] = os.path.join(_HOME, "huggingface")
# fits write their records to a knowledge base of the session's own, and search without warm
# start (tests/core/test_knowledge.py turns it on): a trial sequence must not depend on which
# tests ran before
os.environ["AUTOML_TL_KNOWLEDGE"] = os.path.join(_HOME, "knowledge.jsonl")
os.environ["AUTOML_TL_WARM_START"] = "0"
os.environ.pop("AUTOML_TL_PRIOR", None)  # the shipped prior, whatever the developer's shell says

import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_home():
    yield
    shutil.rmtree(_HOME, ignore_errors=True)


#: modules whose tests share one outside resource and must not run beside each other under
#: pytest-xdist: the PostgreSQL server (test_faults_database restarts it under the others' feet).
#: Each test of them holds the resource's lock (:func:`_alone_when_asked`). (Group marks with
#: ``--dist loadgroup`` did this before: on pytest 9.2 xdist 3.8's group suffix no longer reaches
#: the node id, ``Node.nodeid`` being read from ``_id``, and every test became a scope of its own:
#: module fixtures built on both workers, and the two modules run at once.)
_SHARED_RESOURCE = {"test_workers": "postgres", "test_faults_database": "postgres"}


#: how much longer than a quick test a ``slow`` one is taken to be, to order the groups (below)
_SLOW_WEIGHT = 20


def pytest_configure(config):
    """xdist hands its scopes (modules) out largest first, by their number of tests
    (``--loadscope-reorder``, on by default): the few long modules (PostgreSQL, the kill loop, the
    exports) went last, and one worker ran them alone at the end. Off: the modules go in the
    order set below."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n 2 --dist loadfile`` (the README's command) each module runs whole on
    one worker, so its module-scoped fixtures (a fitted run, a started server) are built once.

    The modules are ordered longest first (each ``slow`` test counted as ``_SLOW_WEIGHT`` quick
    ones), so that the last ones handed out are short and both workers end together; within a
    module the order is the collection's. A module with an ``alone`` test goes last, that test last in it: it
    waits for the test running beside it to end, then runs with the other worker held, and at the
    end that wait is a short test's and the other worker has little left to hold (in the middle
    of the run both had cost about the test's length). Every worker computes the same order."""
    weight: dict[str, int] = {}
    alone: set[str] = set()
    for item in items:
        name = item.module.__name__
        weight[name] = weight.get(name, 0) + (_SLOW_WEIGHT if item.get_closest_marker("slow") else 1)
        if item.get_closest_marker("alone"):
            alone.add(name)
    first = {}
    for i, item in enumerate(items):
        first.setdefault(item.module.__name__, i)
    items.sort(key=lambda it: (it.module.__name__ in alone, -weight[it.module.__name__], first[it.module.__name__],
                               it.get_closest_marker("alone") is not None))


@pytest.fixture(autouse=True)
def _alone_when_asked(request):
    """Under pytest-xdist, a test marked ``alone`` (it measures the machine's time, e.g. a time
    budget held on a machine it loads itself) runs while the other workers wait between their
    tests. A turnstile lock keeps the others from starting new tests while it waits, then an
    exclusive lock waits for the tests they are running; every other test holds the second lock
    shared. A test of a module in ``_SHARED_RESOURCE`` also holds that resource's lock, taken
    after the others (one order: no deadlock). Without xdist nothing is locked. (pytest-xdist
    has no such mark of its own.)"""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        yield
        return
    import contextlib
    import fcntl

    base = os.path.join(tempfile.gettempdir(), f"automl-tl-tests-{run}")
    alone = request.node.get_closest_marker("alone") is not None
    with open(base + ".turnstile", "a") as turnstile, open(base + ".lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        resource = _SHARED_RESOURCE.get(request.module.__name__.rsplit(".", 1)[-1])
        try:
            with open(f"{base}.{resource}", "a") if resource else contextlib.nullcontext() as held:
                if resource:
                    fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
                yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(turnstile, fcntl.LOCK_UN)


NO_TENSORFLOW = """
import sys

class NoTensorFlow:  # a module that is not installed: its import fails, it never enters sys.modules
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_text", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTensorFlow())
"""


@pytest.fixture
def jax_without_tensorflow(tmp_path):
    """The environment of a subprocess on Keras' JAX backend (CPU) in which every import of
    TensorFlow fails, as on a GPU machine that has JAX but no TensorFlow; its embedding cache in
    ``tmp_path / "cache"``."""
    block = tmp_path / "no-tensorflow"
    block.mkdir(exist_ok=True)
    (block / "sitecustomize.py").write_text(NO_TENSORFLOW)
    return dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", AUTOML_TL_CACHE_DIR=str(tmp_path / "cache"),
                PYTHONPATH=os.pathsep.join([str(block), os.environ.get("PYTHONPATH", "")]))
