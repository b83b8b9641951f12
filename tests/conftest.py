"""Shared test settings: quiet TensorFlow, no network probes, and caches of the test session's own.

Nothing a user's earlier runs left in their caches is read: the embedding cache
(``AUTOML_TL_CACHE_DIR``), Keras' home (``~/.keras``: its config and downloaded weights) and the
Hugging Face cache (``~/.cache/huggingface``) and the knowledge base of past searches all point into one temporary folder for the session,
set here, before anything imports Keras or huggingface_hub. Weights come from installed packages.
"""

import json
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


#: the parent of the command-line processes of :func:`forked_cli`: it imports what
#: ``python -m automl_tl.cli`` imports before a command runs (TensorFlow, Keras, the plugins),
#: then forks one child per request (a line of JSON: its id, argv, environment, working folder,
#: the files for its stdout and stderr) and tells its pid; whenever a child ends it tells its exit
#: status (``-9`` when it was SIGKILLed). Children run side by side (workers of one search). It runs
#: no TensorFlow op and starts no thread, so a child starts as a new interpreter is once its
#: imports are done. Its replies go on a copy of its stdout; anything the imports print goes to
#: stderr. It ends when its stdin closes and its children have ended.
_FORK_PARENT = r"""
import json
import os
import select
import signal
import sys
import traceback

replies = os.dup(1)
os.dup2(2, 1)

import automl_tl.cli  # noqa: F401 - and through a command's imports, below
import automl_tl.estimator, automl_tl.search, automl_tl.training, keras  # noqa: F401,E401
from automl_tl.plugin_manager import PluginManager

PluginManager().backbones  # imports every plugin module, as a command does
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for a child is not the parent's


def reply(message):
    os.write(replies, (json.dumps(message) + "\n").encode())


def child(req):
    code = 1
    try:
        os.close(replies)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        with open(req["out"], "w") as out, open(req["err"], "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, as a new interpreter has it
        code = automl_tl.cli.main(req["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


pending, running, listening = b"", set(), True
while listening or running:
    if select.select([0] if listening else [], [], [], 0.05)[0]:
        chunk = os.read(0, 1 << 16)
        listening = bool(chunk)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            req = json.loads(line)
            pid = os.fork()
            if pid == 0:
                child(req)
            running.add(pid)
            reply({"id": req["id"], "pid": pid})
    for pid in list(running):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            running.discard(pid)
            reply({"pid": pid, "status": os.waitstatus_to_exitcode(status)})
"""


class ForkedProcess:
    """A command started by :meth:`ForkedCLI.start`, read as a ``subprocess.Popen`` is."""

    def __init__(self, cli, pid, argv, out, err):
        self._cli, self.pid, self.args, self._out, self._err = cli, pid, ["automl-tl", *argv], out, err
        self.returncode = None

    def poll(self):
        self._cli._pump(0)
        self.returncode = self._cli._ended.get(self.pid)
        return self.returncode

    def wait(self, timeout=None):
        """Its exit status; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        import subprocess
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._cli._pump(left if left is not None else 60)
        return self.returncode

    def communicate(self, timeout=None):
        """``(stdout, stderr)`` once it has ended."""
        self.wait(timeout)
        return self._out.read_text(), self._err.read_text()

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(9)


class ForkedCLI:
    """``automl-tl`` commands, each in a process of its own forked from one that has done the
    command-line's imports (:data:`_FORK_PARENT`): a command as a new interpreter runs it (its own
    pid, exit status, stdout and stderr; it can be SIGKILLed or sent Ctrl-C; several at once),
    without TensorFlow's start-up each time (8.5 CPU-seconds on this machine).

    What only a new interpreter proves (what a module reads from the environment when it is
    imported, the JAX backend, the entry point) is proved by the tests that start one: the
    loaded-machine time budget's (tests/core/test_faults_budget_space.py), the server's
    (tests/deploy/test_serve.py), the JAX tests."""

    def __init__(self, tmp):
        self._tmp, self._parent, self._n = tmp, None, 0
        self._pending, self._started, self._ended = b"", {}, {}

    def _pump(self, timeout):
        """Read the parent's replies that arrive within ``timeout`` seconds (all that are there)."""
        import select

        fd = self._parent.stdout.fileno()
        while select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 1 << 16)
            assert chunk, f"the forking process ended (exit {self._parent.poll()})"
            self._pending += chunk
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                r = json.loads(line)
                if "status" in r:
                    self._ended[r["pid"]] = r["status"]
                else:
                    self._started[r["id"]] = r["pid"]
            timeout = 0

    def start(self, argv, *, env=None, cwd=None):
        """Start ``automl-tl ARGV`` (``env``: the whole environment, as subprocess takes it; this
        process's by default): its :class:`ForkedProcess`."""
        import subprocess
        import sys
        import time

        if self._parent is None:
            self._parent = subprocess.Popen([sys.executable, "-c", _FORK_PARENT], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE)
        self._n += 1
        argv = list(map(str, argv))
        out, err = self._tmp / f"{self._n}.stdout", self._tmp / f"{self._n}.stderr"
        req = {"id": self._n, "argv": argv, "env": dict(os.environ if env is None else env),
               "cwd": str(cwd or os.getcwd()), "out": str(out), "err": str(err)}
        self._parent.stdin.write((json.dumps(req) + "\n").encode())
        self._parent.stdin.flush()
        end = time.monotonic() + 300  # the first waits for the parent's imports
        while self._n not in self._started and time.monotonic() < end:
            self._pump(end - time.monotonic())
        assert self._n in self._started, "the forking process did not answer in 300 s"
        return ForkedProcess(self, self._started[self._n], argv, out, err)

    def run(self, argv, *, env=None, cwd=None, timeout=600):
        """``automl-tl ARGV`` to its end: its ``subprocess.CompletedProcess``; one that has not
        ended in ``timeout`` seconds is killed and fails the test."""
        import subprocess

        proc = self.start(argv, env=env, cwd=cwd)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"automl-tl {' '.join(map(str, argv))}: no exit after {timeout} s")
        return subprocess.CompletedProcess(proc.args, proc.returncode, *proc.communicate())

    def close(self):
        if self._parent is None:
            return
        self._pump(0)
        for pid in set(self._started.values()) - set(self._ended):  # left running by a failed test
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self._parent.stdin.close()
        self._parent.wait(timeout=60)


@pytest.fixture(scope="session")
def forked_cli(tmp_path_factory):
    """:class:`ForkedCLI`: command-line processes forked from one that has done the imports."""
    cli = ForkedCLI(tmp_path_factory.mktemp("forked-cli"))
    yield cli
    cli.close()
