"""One way to run many independent tasks: in this process, in a local process pool, or on a Ray cluster.

``pcavs batch`` (one video a task), ``pcavs preprocess`` (one shard a task) and ``pcavs benchmark``
(one test video a task) describe their work as a :class:`Job`:

- ``shared``: the payload every worker needs (the model's weights, the run's settings). It is sent
  once: pickled into each local worker process when it starts, or ``ray.put`` once into Ray's object
  store, where every node fetches it a single time;
- ``setup(shared) -> state``: runs once per worker process, on its first task (loads the model on the
  worker's device, builds the face detector);
- ``task(state, item) -> result``: one unit of work. Tasks must be safe to run twice: Ray reruns a
  task whose worker process died, so a task writes its outputs atomically (temporary name, rename)
  and the same inputs give the same bytes.

:meth:`Engine.run` returns the results in the order of the items (and calls ``on_done(index,
result)`` as each finishes, for progress and logs). ``setup`` and ``task`` must be module-level
functions (they are pickled by name). Ray is imported only by :class:`RayEngine`.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pcavs.errors import UserError

__all__ = [
    "Engine",
    "EngineConfig",
    "EngineError",
    "InProcessEngine",
    "Job",
    "PoolEngine",
    "RayEngine",
    "add_ray_arguments",
    "engine_config_from_args",
    "make_engine",
]


class EngineError(UserError, RuntimeError):
    """The engine cannot start (Ray missing, cluster unreachable, bad resources); the message says what to do."""


@dataclass(frozen=True)
class Job:
    """What every worker runs; see the module docstring."""

    setup: Callable[[Any], Any]
    shared: Any
    task: Callable[[Any, Any], Any]
    name: str = "pcavs-task"  # Ray shows it as the worker's process title (ray::NAME) while a task runs


@dataclass(frozen=True)
class EngineConfig:
    """Where tasks run. ``ray`` None: ``workers`` local processes (1: this process)."""

    workers: int = 1
    ray: str | None = None  # "auto" (a cluster on this machine or $RAY_ADDRESS, else a new local one) or ADDRESS
    cpus: float = 1.0  # Ray: CPUs each task reserves (also its torch threads)
    gpus: float = 0.0  # Ray: GPUs each task reserves (0.5: two tasks share one GPU)
    threads: int = 0  # torch and BLAS threads per worker process (0: 1 in a pool, the task's CPUs under Ray)
    retries: int = 3  # Ray: reruns of a task whose worker process or node died

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise EngineError(f"workers must be 1 or more, got {self.workers}")
        if self.cpus <= 0 or self.gpus < 0:
            raise EngineError(f"--ray-cpus must be > 0 and --ray-gpus >= 0, got {self.cpus} and {self.gpus}")
        if self.threads < 0 or self.retries < 0:
            raise EngineError(f"threads and retries must be >= 0, got {self.threads} and {self.retries}")


class Engine(ABC):
    """Runs a :class:`Job` over items; results come back in the items' order."""

    #: True when tasks run in the calling process (``shared`` is then not pickled and may hold anything)
    in_process: bool = False

    @abstractmethod
    def run(self, job: Job, items: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """``[task(state, item) for item in items]``; ``on_done(i, result)`` as each one finishes. A task's
        exception stops the run (the pending tasks are cancelled) and is raised here."""

    def describe(self) -> str:
        return type(self).__name__

    def close(self) -> None:  # noqa: B027 - most engines hold nothing between runs
        """Release what the engine started (Ray: disconnect, and stop a local instance it started)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------ per-process worker state
# One state per worker process, made on the first task of a run (token) and kept for its other tasks.
_STATE: tuple[str, Any] | None = None
_POOL_JOB: tuple[str, Callable[[Any], Any], Any] | None = None  # (token, setup, shared) of this pool process


def _set_threads(threads: int) -> None:
    if threads > 0:
        from pcavs.device import set_cpu_threads

        set_cpu_threads(threads)


def _state(token: str, setup: Callable[[Any], Any], shared: Callable[[], Any]) -> Any:
    global _STATE
    if _STATE is None or _STATE[0] != token:
        _STATE = None  # free the previous run's model before loading this one
        _STATE = (token, setup(shared()))
    return _STATE[1]


class InProcessEngine(Engine):
    """Everything in the calling process, one item after another."""

    in_process = True

    def run(self, job: Job, items: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        state = job.setup(job.shared)
        out = []
        for i, item in enumerate(items):
            out.append(job.task(state, item))
            if on_done is not None:
                on_done(i, out[-1])
        return out

    def describe(self) -> str:
        return "this process"


def _pool_init(token: str, setup: Callable[[Any], Any], shared: Any, threads: int) -> None:
    global _POOL_JOB
    _set_threads(threads)
    _POOL_JOB = (token, setup, shared)


def _pool_call(task: Callable[[Any, Any], Any], item: Any) -> Any:
    assert _POOL_JOB is not None
    token, setup, shared = _POOL_JOB
    # setup runs inside the first task (not the initializer) so its errors arrive with their own type
    return task(_state(token, setup, lambda: shared), item)


def _gather(futures: Sequence[Any], wait: Callable[[list[Any]], tuple[list[Any], list[Any]]],
            result: Callable[[Any], Any], cancel: Callable[[Any], None],
            on_done: Callable[[int, Any], None] | None) -> list[Any]:
    """Results of ``futures`` in their order, ``on_done`` as each completes; the first error cancels the rest."""
    index = {f: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(futures)
    pending = list(futures)
    try:
        while pending:
            finished, pending = wait(pending)
            for f in sorted(finished, key=index.__getitem__):
                i = index[f]
                out[i] = result(f)
                if on_done is not None:
                    on_done(i, out[i])
    except BaseException:
        for f in pending:
            cancel(f)
        raise
    return out


class PoolEngine(Engine):
    """``workers`` local processes (spawned: dlib, PyAV and torch state is not fork-safe)."""

    def __init__(self, workers: int, threads: int = 1) -> None:
        self.workers, self.threads = workers, threads

    def run(self, job: Job, items: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        if not items:
            return []
        ctx = mp.get_context("spawn")
        workers = min(self.workers, len(items))
        initargs = (uuid.uuid4().hex, job.setup, job.shared, self.threads)
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pool_init, initargs=initargs) as pool:
            futures = [pool.submit(_pool_call, job.task, item) for item in items]

            def wait(pending: list[Any]) -> tuple[list[Any], list[Any]]:
                done, rest = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                return list(done), list(rest)

            return _gather(futures, wait, lambda f: f.result(), lambda f: f.cancel(), on_done)

    def describe(self) -> str:
        return f"{self.workers} local processes"


def _ray_call(token: str, setup: Callable[[Any], Any], shared_box: list[Any], task: Callable[[Any, Any], Any],
              item: Any, threads: int, cwd: str) -> Any:
    """A Ray task: the shared payload is fetched from the object store on a worker's first task only
    (it travels boxed in a list, so Ray does not resolve it for every task)."""
    import ray

    if os.path.isdir(cwd):  # relative paths mean what they mean to the command (shared storage: same path)
        os.chdir(cwd)

    if _STATE is None or _STATE[0] != token:
        _set_threads(threads)
    return task(_state(token, setup, lambda: ray.get(shared_box[0])), item)


class RayEngine(Engine):
    """Ray tasks that reserve ``cpus``/``gpus`` each; a task whose worker dies is rerun (``retries``)."""

    def __init__(self, address: str = "auto", cpus: float = 1.0, gpus: float = 0.0, threads: int = 0,
                 retries: int = 3) -> None:
        try:
            import ray
        except ImportError:
            raise EngineError("--ray needs Ray: pip install 'pcavs[ray]' (or pip install ray)") from None
        self.address, self.cpus, self.gpus, self.retries = address, cpus, gpus, retries
        self.threads = threads or max(1, int(cpus))
        self._connected_here = False
        if not ray.is_initialized():
            try:
                # no log_to_driver: every worker's progress bars and warnings would interleave with ours;
                # a task's error still comes back with its traceback
                ray.init(address=None if address == "auto" else address, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise EngineError(f"cannot connect to the Ray cluster at {address!r} ({e}); start it with "
                                  "`ray start --head` or pass its ADDRESS (host:6379)") from None
            self._connected_here = True
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        total = ray.cluster_resources()
        if total.get("CPU", 0) < cpus or total.get("GPU", 0) < gpus:
            self.close()
            raise EngineError(f"each task asks for {cpus:g} CPU and {gpus:g} GPU but the Ray cluster has "
                              f"{total.get('CPU', 0):g} CPU and {total.get('GPU', 0):g} GPU; lower --ray-cpus/"
                              "--ray-gpus or add nodes")
        self._summary = f"Ray, {len(nodes)} nodes, {total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU"

    def run(self, job: Job, items: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        import ray

        if not items:
            return []
        remote = ray.remote(_ray_call).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries,
                                               retry_exceptions=False, name=job.name)
        box = [ray.put(job.shared)]  # once: every node fetches it from the object store
        token = uuid.uuid4().hex
        refs = [remote.remote(token, job.setup, box, job.task, item, self.threads, os.getcwd()) for item in items]

        def wait(pending: list[Any]) -> tuple[list[Any], list[Any]]:
            done, rest = ray.wait(pending, num_returns=1)  # block for one, then take all that are ready
            more, rest = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], rest)
            return done + more, rest

        def cancel(ref: Any) -> None:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - already finished or gone; nothing to stop
                pass

        return _gather(refs, wait, ray.get, cancel, on_done)

    def describe(self) -> str:
        return self._summary

    def close(self) -> None:
        if self._connected_here:
            import ray

            ray.shutdown()
            self._connected_here = False


def make_engine(cfg: EngineConfig) -> Engine:
    """The engine ``cfg`` describes (Ray is imported only when ``cfg.ray`` is set)."""
    if cfg.ray:
        return RayEngine(cfg.ray, cfg.cpus, cfg.gpus, cfg.threads, cfg.retries)
    if cfg.workers == 1:
        return InProcessEngine()
    return PoolEngine(cfg.workers, cfg.threads or 1)


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray``, ``--ray-cpus``, ``--ray-gpus`` (the same on every command that can scale out)."""
    parser.add_argument("--ray", metavar="auto|ADDRESS", default=None,
                        help="run the tasks on a Ray cluster (pip install 'pcavs[ray]'): auto = the cluster "
                        "started on this machine with `ray start` (or $RAY_ADDRESS), else a new local one; "
                        "ADDRESS = the head node's host:port. --workers is then ignored")
    parser.add_argument("--ray-cpus", type=float, default=1.0, metavar="N",
                        help="CPUs each Ray task reserves, also its torch threads (default: 1)")
    parser.add_argument("--ray-gpus", type=float, default=0.0, metavar="N",
                        help="GPUs each Ray task reserves (default: 0; 1 per task, or 0.5 to share a GPU)")


def engine_config_from_args(args: argparse.Namespace, workers: int = 1, threads: int = 0) -> EngineConfig:
    """The :class:`EngineConfig` of parsed :func:`add_ray_arguments` options (and ``--device``, if any)."""
    if args.ray and getattr(args, "device", None) == "cuda" and args.ray_gpus <= 0:
        # Ray hides the GPUs from a task that reserved none: it would fail on every row
        raise EngineError("--device cuda under --ray needs GPUs per task: add --ray-gpus 1 (or 0.5 to share one)")
    return EngineConfig(workers=workers, ray=args.ray, cpus=args.ray_cpus, gpus=args.ray_gpus, threads=threads)
