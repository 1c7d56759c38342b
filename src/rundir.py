"""Run-directory I/O in one place: where a run writes, and every file it writes or reads back.

    runs/<experiment>/<timestamp>/
        config.yaml               the resolved config that produced the numbers     save_config / saved_config
        labels.json               id <-> label name                                 save_labels
        checkpoints/*.ckpt        last / interrupted / step-<N> / best              newest_checkpoint, run_checkpoint
        metrics.json              the run's summary (validation and test metrics)   write_metrics / read_metrics
        predictions_<split>.csv   label, pred, prob_<class>...                      save_predictions / read_predictions
        wandb_id                  the W&B run a resumed run continues               wandb_run_id
        .lock                     held by the live training process (who, since when) exclusive

Light on purpose (numpy and pandas imported where used, nothing of the project but src.errors): the config
composer, reports and notebooks read run directories without importing torch.

Every write goes through `atomic_open`: a temporary file beside the target, flushed to disk and renamed over
it, so a crash leaves the old file or the new one, never half of one (docs/fault_tolerance.md).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pickle
import re
import socket
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
RUNS_ROOT = Path("runs")
# What a run resumes from: the epoch's last, Ctrl-C/crash, and mid-epoch (src.callbacks.checkpoint) checkpoints.
RESUME_PATTERNS = ("last.ckpt", "interrupted.ckpt", "step-*.ckpt")
# DDP worker processes re-run the entry point; they find the parent's run dir in this variable.
RUN_DIR_ENV = "LAB_RUN_DIR"
LOCK_FILE = ".lock"


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold <run_dir>/.lock (fcntl.flock) for the block; a second process is refused at once, naming the holder.
    The kernel drops the lock when its holder exits, however it dies, so a lock is never stale."""
    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            raise ConfigError(f"Run directory {run_dir} is in use by {file.read().strip() or 'another process'}: "
                              "wait for that run to end (or stop it), or leave run_dir unset to start a new run "
                              "directory.") from None
        file.truncate(0)
        file.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                   f"{datetime.now().astimezone().isoformat(timespec='seconds')}")
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def run_dir_of(ckpt: Path) -> Path:
    """The run directory a checkpoint belongs to (<run>/checkpoints/<name>.ckpt)."""
    return Path(ckpt).resolve().parent.parent


def timestamp() -> str:
    """A new run directory's name: the start time, to the microsecond."""
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temporary file beside it, flushed to disk and renamed over `path` when the block
    ends without error (removed when it fails): readers see the old file or the new one, never part of one.

    Hand-written: the standard library has none, and fsspec's transaction (Lightning's writer) stages the file in
    the system temp directory, which is a copy, not a rename, when that is another filesystem."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> Path:
    """`path.write_text(text)`, atomically."""
    with atomic_open(path) as file:
        file.write(text)
    return Path(path)


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (torch saves a zip archive: not a complete archive, or a member
    failing its CRC), None when it is intact. Reads the whole file: about a second for a few hundred MB."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"{type(err).__name__}: {err}"
    return f"{damaged} fails its CRC check" if damaged else None


def load_checkpoint(path: Path, map_location: Any = "cpu", mmap: bool = False,
                    keys: tuple[str, ...] = ("state_dict",)) -> dict[str, Any]:
    """`torch.load` of a user's checkpoint, unpickling tensors and plain containers only (no code runs): the one
    loader of .ckpt / .pt files. A ConfigError in one line when the file is refused or lacks one of `keys`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint not found: {path}. Pass a .ckpt file, e.g. "
                          "runs/<experiment>/<run>/checkpoints/last.ckpt.")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ConfigError(f"{path} was not loaded: {_refusal(path, err)}.") from None
    missing = [key for key in keys if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise ConfigError(f"{path} was not loaded: it is not a checkpoint written by this lab (no "
                          f"{', '.join(missing)}); pass runs/<experiment>/<run>/checkpoints/<name>.ckpt.")
    return checkpoint


def _refusal(path: Path, err: Exception) -> str:
    """Why torch refused `path` (weights-only unpickling), in words that do not invite unsafe loading."""
    if found := re.search(r"GLOBAL ([\w.]+)", str(err)):
        return (f"it holds pickled code or objects ({found[1]}), and only tensors and plain containers are "
                "unpickled; use a checkpoint written by this lab (or re-save just its weights)")
    damaged = checkpoint_problem(path) or str(err).split(". ")[0]
    return f"it is not a complete PyTorch checkpoint (truncated, damaged or another kind of file: {damaged})"


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes a killed process left in `run_dir` and its checkpoints/."""
    partial = [p for d in (Path(run_dir), Path(run_dir) / "checkpoints") for p in d.glob(".*.tmp") if p.is_file()]
    for path in partial:
        path.unlink()
    return partial


def checkpoint_step(path: Path) -> int:
    """The global step an intact Lightning checkpoint was saved at."""
    return int(load_checkpoint(path, mmap=True, keys=()).get("global_step", 0))


def check_checkpoint_labels(ckpt: str | Path, label_names: Sequence[str], key: str) -> None:
    """Refuse a checkpoint whose model was trained on other labels (names or order) than `label_names`."""
    saved = load_checkpoint(ckpt, mmap=True, keys=()).get("hyper_parameters", {}).get("label_names")
    if saved is not None and list(saved) != list(label_names):
        raise ConfigError(f"{key}={ckpt} was trained on labels {list(saved)}, but this run has data.label_names="
                          f"{list(label_names)}: use a checkpoint of a run with the same labels in the same order, "
                          "or set data.label_names to them.")


def newest_checkpoint(run_dirs: list[Path], set_aside_damaged: bool = False) -> Path | None:
    """The most recently written intact last/interrupted/mid-epoch checkpoint among `run_dirs` that holds training
    progress (one saved at global step 0, by a run that failed at its start, is passed over). A damaged newer
    one is named in a warning and passed over; with `set_aside_damaged` (when a run resumes) it is renamed to
    <name>.damaged, so that the resumed run writes a fresh last.ckpt instead of a versioned last-v1.ckpt."""
    found = [path for d in run_dirs for pattern in RESUME_PATTERNS for path in (d / "checkpoints").glob(pattern)]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            if checkpoint_step(path) > 0:
                return path
            log.info("Checkpoint %s was saved before any training step; passed over.", path)
            continue
        log.warning("Checkpoint %s is damaged (%s); resuming from the previous checkpoint instead%s.", path, problem,
                    f" (kept as {path.name}.damaged)" if set_aside_damaged else "")
        if set_aside_damaged:
            path.replace(path.with_name(f"{path.name}.damaged"))
    return None


def launcher_run_id() -> str | None:
    """An id shared by all processes that torchrun or srun started together (None for one process),
    so that every rank of a multi-node run writes to the same run directory."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in os.environ:
        if os.environ["TORCHELASTIC_RUN_ID"] == "none":
            raise ConfigError("torchrun without --rdzv-id: pass run_dir=<shared path> (or --rdzv-id=<id>) so "
                              "that every process writes to the same run directory.")
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}"
    return None


def resolve_run_dir_and_ckpt(cfg: DictConfig) -> tuple[Path, str | None]:
    """Where this run writes, and which checkpoint it resumes from (ckpt_path: null | last | <path>)."""
    if cfg.ckpt_path == "last":
        candidates = [Path(cfg.run_dir)] if cfg.run_dir else sorted((RUNS_ROOT / cfg.experiment).glob("*"))
        ckpt = newest_checkpoint(candidates, set_aside_damaged=True)
        if ckpt is None:
            raise ConfigError(f"ckpt_path=last but no intact last/interrupted/step checkpoint exists under "
                              f"{cfg.run_dir or RUNS_ROOT / cfg.experiment}. Start a fresh run without ckpt_path.")
        load_checkpoint(ckpt, mmap=True)  # refused here, in one line, before Lightning unpickles it
        return ckpt.parent.parent, str(ckpt)
    if cfg.ckpt_path is not None:
        ckpt = Path(cfg.ckpt_path)
        if not ckpt.is_file():
            raise ConfigError(f"ckpt_path={ckpt} does not exist.")
        if problem := checkpoint_problem(ckpt):
            raise ConfigError(f"ckpt_path={ckpt} was not loaded: it is damaged ({problem}); pass another checkpoint, "
                              "or ckpt_path=last for the newest intact one.")
        load_checkpoint(ckpt, mmap=True)
        return (Path(cfg.run_dir) if cfg.run_dir else ckpt.parent.parent), str(ckpt)
    if cfg.run_dir:
        return Path(cfg.run_dir), None
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV]), None
    if launcher_run_id():
        return RUNS_ROOT / cfg.experiment / launcher_run_id(), None
    return RUNS_ROOT / cfg.experiment / timestamp(), None


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / "config.yaml"


def save_config(cfg: DictConfig, run_dir: Path) -> Path:
    """<run_dir>/config.yaml: the fully resolved config (what produced the run's numbers)."""
    return atomic_write_text(config_path(run_dir), OmegaConf.to_yaml(cfg, resolve=True))


def saved_config(run_dir: Path) -> DictConfig:
    """A run's config.yaml as an OmegaConf node (to compose from again)."""
    path = config_path(run_dir)
    if not path.is_file():
        raise ConfigError(f"No config.yaml in {run_dir}: use a checkpoint or directory of a run made by this lab.")
    return OmegaConf.create(upgraded(OmegaConf.to_container(OmegaConf.load(path))))


# Keys added since runs were first saved, with the value every run saved before them used.
ADDED_KEYS = {"data": {"_target_": "src.datamodules.text_classification.TextClassificationDataModule"},
              "model": {"_target_": "src.modules.text_classifier.TextClassifier"}}


def upgraded(config: dict[str, Any]) -> dict[str, Any]:
    """A saved config in today's keys: one made before text pairs has `data.text_column` (now `data.text_columns`),
    one made before models and data modules were chosen by `_target_` lacks those keys (it used today's defaults)."""
    config = {**config, **{group: {**added, **(config.get(group) or {})} for group, added in ADDED_KEYS.items()
                           if group in config}}
    data = config.get("data") or {}
    if "text_column" not in data:
        return config
    rest = {key: value for key, value in data.items() if key != "text_column"}
    return {**config, "data": {**rest, "text_columns": [data["text_column"]]}}


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """A run's config.yaml as plain YAML data (what config hashes compare), None when it has none."""
    import yaml

    path = config_path(run_dir)
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def save_labels(run_dir: Path, label_names: list[str]) -> Path:
    """<run_dir>/labels.json (id <-> label name), so predictions can be read back without the config."""
    mapping = {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)}}
    return atomic_write_text(Path(run_dir) / "labels.json", json.dumps(mapping, indent=2))


def read_labels(run_dir: Path) -> list[str] | None:
    """The label names by id from <run_dir>/labels.json (None when the run has none)."""
    path = Path(run_dir) / "labels.json"
    if not path.is_file():
        return None
    id2label = json.loads(path.read_text())["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def write_metrics(run_dir: Path, summary: dict[str, Any], name: str = "metrics.json") -> Path:
    """<run_dir>/<name> (default metrics.json): a run's summary; its presence marks the run finished."""
    return atomic_write_text(Path(run_dir) / name, json.dumps(summary, indent=2))


def wandb_run_id(run_dir: Path, resuming: bool) -> str:
    """The W&B run id of a training run: the one in <run_dir>/wandb_id when it resumes (one run, one W&B run),
    else a new one, written there."""
    path = Path(run_dir) / "wandb_id"
    if resuming and path.is_file():
        return path.read_text().strip()
    return atomic_write_text(path, uuid.uuid4().hex[:12]).read_text()


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """A finished run's metrics.json."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def is_finished(run_dir: Path) -> bool:
    """Whether the run wrote its metrics.json (its last file)."""
    return (Path(run_dir) / "metrics.json").is_file()


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run was tested with (its best one), else its last one."""
    best = read_metrics(run_dir).get("best_checkpoint") if is_finished(run_dir) else None
    for candidate in (best, Path(run_dir) / "checkpoints" / "last.ckpt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError(f"No checkpoint in {run_dir}: the run saved none (use callbacks=default, which includes "
                      "model_checkpoint).")


def latest_checkpoint(experiment: str) -> Path:
    """Best (else last) checkpoint of the newest finished run of `experiment` (e.g. a KD teacher)."""
    finished = sorted((RUNS_ROOT / experiment).glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not finished:
        raise ConfigError(f"No finished run under {RUNS_ROOT / experiment}/: train it first "
                          f"(make train EXP={experiment}) or pass the checkpoint path explicitly.")
    return run_checkpoint(finished[-1].parent)


def predictions_path(run_dir: Path, split: str) -> Path:
    return Path(run_dir) / f"predictions_{split}.csv"


def save_predictions(run_dir: Path, split: str, probs: np.ndarray, labels: np.ndarray,
                     label_names: list[str]) -> Path:
    """<run_dir>/predictions_<split>.csv: label, pred, prob_<class>... (read back for statistics and fusion)."""
    import numpy as np

    path = predictions_path(run_dir, split)
    header = ",".join(["label", "pred", *(f"prob_{name}" for name in label_names)])
    table = np.column_stack([labels, probs.argmax(1), probs])
    fmt = ["%d", "%d"] + ["%.6f"] * probs.shape[1]
    with atomic_open(path) as file:
        np.savetxt(file, table, delimiter=",", header=header, comments="", fmt=fmt)
    return path


def read_predictions(run_dir: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [n, classes], labels [n]) from a run's predictions_<split>.csv."""
    import numpy as np
    import pandas as pd

    table = pd.read_csv(predictions_path(run_dir, split))
    probs = table[[c for c in table.columns if c.startswith("prob_")]].to_numpy(dtype=np.float64)
    return probs, table["label"].to_numpy(dtype=np.int64)
