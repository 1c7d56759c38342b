"""Where a design's runs execute: this machine (a process pool), SLURM (submitit) or a Ray cluster.

The runner decides which runs are missing (the skip / refuse-stale / resume rules live there, once); a launcher
only calls one function per missing run and says which calls failed. A relaunched run resumes from the
checkpoint in its own run directory because the function it calls (`runner.execute`) passes ckpt_path=last
when one exists, whatever process, SLURM job or Ray task that happens in. Every launcher needs the repository
and the results directory at the same path wherever the runs execute (a shared filesystem on a cluster).
"""

import logging
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
import torch

from src.config import REPO_ROOT
from src.errors import ConfigError
from src.validation import require, require_choice

log = logging.getLogger(__name__)
LAUNCHERS = ("local", "submitit", "ray")
Call = tuple[Any, ...]  # the positional arguments of one call of the launched function


@dataclass
class SubmititSettings:
    """SLURM job parameters (submitit.AutoExecutor); `cluster: local` runs the jobs as local processes."""

    cluster: str | None = None  # null: submitit's detection (slurm where sbatch exists); local | debug | slurm
    partition: str | None = None
    time_min: int = 240  # the job's time limit (SLURM --time; the local executor's timeout too)
    gpus_per_task: int | None = None  # null: 1 when this machine sees a CUDA GPU, else 0
    cpus_per_task: int = 2  # also the run's torch threads
    mem_gb: float | None = None
    additional: dict[str, Any] = field(default_factory=dict)  # any other sbatch option: {account: x, qos: y}
    folder: str | None = None  # job pickles and logs; null: results/<design>/submitit


@dataclass
class RaySettings:
    """Ray task resources; the cluster is `address`, else $RAY_ADDRESS, else a new local instance."""

    address: str | None = None  # e.g. auto | ray://head:10001 | 10.0.0.1:6379
    cpus_per_run: int = 1  # also the run's torch threads
    gpus_per_run: float | None = None  # null: 1 when the Ray cluster has GPUs, else 0
    max_retries: int = 2  # a run whose worker process died is retried; it resumes from its checkpoint


@dataclass
class LauncherSettings:
    """`launcher:` of a design (or `launcher=NAME workers=N launcher.ray.address=…` on the command line)."""

    name: str = "local"
    workers: int = 1  # local: processes; submitit: jobs at once (array parallelism); ray: CPUs of a new instance
    submitit: SubmititSettings = field(default_factory=SubmititSettings)
    ray: RaySettings = field(default_factory=RaySettings)


def check_settings(settings: LauncherSettings) -> None:
    """Fail fast on a launcher name or worker count that cannot work."""
    require_choice("launcher.name", settings.name, LAUNCHERS)
    require(settings.workers >= 1, "launcher.workers", "give at least 1 worker")


def run_call(cwd: str, threads: int | None, fn: Callable[..., Any], args: Call) -> Any:
    """What a worker process, SLURM job or Ray task runs: `fn(*args)` in the driver's directory."""
    os.chdir(cwd)  # relative paths in the configs (results/, data) mean the same as on the driver
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if threads:
        torch.set_num_threads(threads)
    return fn(*args)


class RequeueableCall(submitit.helpers.Checkpointable):
    """A SLURM job that submitit requeues when it is pre-empted or times out (its default `checkpoint`
    resubmits the same call), so the run resumes from the checkpoint it left in its run directory."""

    def __call__(self, cwd: str, threads: int | None, fn: Callable[..., Any], args: Call) -> Any:
        return run_call(cwd, threads, fn, args)


def launch(settings: LauncherSettings, fn: Callable[..., Any], calls: Sequence[Call], labels: Sequence[str],
           results_dir: Path) -> list[int]:
    """Call `fn(*call)` for every call on the configured launcher; the indices of the calls that failed.

    `fn` must be a module-level function (it is pickled to other processes); submitit's files go to
    `results_dir`/submitit unless launcher.submitit.folder says otherwise."""
    if not calls:
        return []
    log.info("Launching %d run(s) on %s (workers=%d).", len(calls), settings.name, settings.workers)
    if settings.name == "submitit":
        return _submitit(settings, fn, calls, labels, results_dir)
    if settings.name == "ray":
        return _ray(settings, fn, calls, labels)
    if settings.workers > 1 and len(calls) > 1:
        return _pool(settings.workers, fn, calls, labels)
    return run_here(fn, calls, labels)


def run_here(fn: Callable[..., Any], calls: Sequence[Call], labels: Sequence[str]) -> list[int]:
    """One call after the other in this process; a failure is logged and the others go on."""
    failed = []
    for index, (call, label) in enumerate(zip(calls, labels, strict=True)):
        log.info("[%d/%d] %s", index + 1, len(calls), label)
        try:
            fn(*call)
        except Exception:  # noqa: BLE001 - one failed run must not stop the others; reported at the end
            log.exception("%s failed", label)
            failed.append(index)
    return failed


def _init_worker(devices: Any) -> None:
    """Pin a pool worker process to one GPU (when there are GPUs)."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM in the driver: unwind like Ctrl-C, so that the pool's workers are stopped too."""
    raise SystemExit(128 + signum)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes now (ProcessPoolExecutor.terminate_workers from Python 3.14 on)."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for process in list(pool._processes.values()):  # noqa: SLF001 - the only handle before Python 3.14
        process.terminate()


def _pool(workers: int, fn: Callable[..., Any], calls: Sequence[Call], labels: Sequence[str]) -> list[int]:
    """`workers` spawned processes of this machine; each gets one GPU when GPUs are present. A stopped driver
    (Ctrl-C, SIGTERM) stops them: shutting the pool down alone would wait for every queued run."""
    context = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    devices = None
    if gpus:
        devices = context.Manager().Queue()
        for index in range(workers):
            devices.put(index % gpus)
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(devices,))
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        futures = {pool.submit(run_call, os.getcwd(), threads, fn, call): i for i, call in enumerate(calls)}
        return _collect(futures, as_completed(futures), labels, lambda future: future.result())
    except BaseException:
        _terminate_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)


def _collect(handles: dict[Any, int], finished: Any, labels: Sequence[str], result: Callable[[Any], Any]
             ) -> list[int]:
    """Wait for every handle (in the order `finished` yields them); log each outcome; the failed indices."""
    failed = []
    for handle in finished:
        index = handles[handle]
        try:
            result(handle)
            log.info("Finished %s", labels[index])
        except Exception:  # noqa: BLE001 - reported at the end, the other runs go on
            log.exception("%s failed", labels[index])
            failed.append(index)
    return sorted(failed)


def _submitit(settings: LauncherSettings, fn: Callable[..., Any], calls: Sequence[Call], labels: Sequence[str],
              results_dir: Path) -> list[int]:
    """One SLURM job per call (a job array), each one task with `gpus_per_task` GPUs; requeued when pre-empted."""
    options = settings.submitit
    try:
        folder = options.folder or results_dir / "submitit"
        executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"launcher=submitit: {err}. Run on a SLURM login node (sbatch on PATH), or set "
            "launcher.submitit.cluster=local to run the jobs as processes of this machine."
        ) from None
    gpus = options.gpus_per_task if options.gpus_per_task is not None else int(torch.cuda.is_available())
    parameters: dict[str, Any] = {
        "name": results_dir.name,
        "timeout_min": options.time_min,
        "cpus_per_task": options.cpus_per_task,
        "tasks_per_node": 1,
        "slurm_array_parallelism": settings.workers,
        "slurm_additional_parameters": dict(options.additional),
    }
    if gpus:
        parameters.update(slurm_gpus_per_task=gpus, local_gpus_per_node=gpus)
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.mem_gb:
        parameters["mem_gb"] = options.mem_gb
    executor.update_parameters(**parameters)
    with executor.batch():
        jobs = [executor.submit(RequeueableCall(), os.getcwd(), options.cpus_per_task, fn, call) for call in calls]
    handles = {job: index for index, job in enumerate(jobs)}
    log.info("Submitted %d %s job(s), logs in %s", len(jobs), executor.cluster, jobs[0].paths.folder)
    return _collect(handles, submitit.helpers.as_completed(jobs), labels, lambda job: job.result())


def _ray(settings: LauncherSettings, fn: Callable[..., Any], calls: Sequence[Call], labels: Sequence[str]
         ) -> list[int]:
    """One Ray task per call with `cpus_per_run` CPUs and one GPU where the cluster has GPUs."""
    try:
        import ray  # an optional extra (pip install -e '.[ray]'): imported only when a design runs on Ray
    except ImportError:
        raise ConfigError("launcher=ray needs Ray: `pip install -e '.[ray]'` (or launcher=local|submitit).") from None
    options = settings.ray
    started = _connect_ray(ray, settings)
    try:
        gpus = options.gpus_per_run
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
        task = ray.remote(num_cpus=options.cpus_per_run, num_gpus=gpus, max_retries=options.max_retries)(run_call)
        handles = {task.remote(os.getcwd(), options.cpus_per_run, fn, call): i for i, call in enumerate(calls)}
        return _collect(handles, _ray_completed(ray, list(handles)), labels, ray.get)
    finally:
        if started:
            ray.shutdown()


def _connect_ray(ray: Any, settings: LauncherSettings) -> bool:
    """Join the configured or $RAY_ADDRESS cluster, else start a local one with `workers` CPUs; True if started."""
    if ray.is_initialized():
        return False
    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    # Tasks import this repository's code (not another checkout's installed copy): same path on every node.
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path}}
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=settings.workers, runtime_env=runtime_env, include_dashboard=False)
    log.info("Ray cluster resources: %s", ray.cluster_resources())
    return True


def _ray_completed(ray: Any, refs: list[Any]) -> Any:
    """Yield Ray object refs as their tasks finish."""
    pending = refs
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield from done
