"""Crash anywhere, lose little: a run SIGKILLed at any step resumes from its newest checkpoint (mid-epoch ones
included) and ends bit-identical to the uninterrupted run."""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from src import rundir
from src.builders import build_trainer
from src.callbacks.checkpoint import AtomicCheckpointIO
from src.config import compose, to_object
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError, DataError
from src.modules.model_builder import load_tokenizer
from src.rundir import newest_checkpoint, resolve_run_dir_and_ckpt
from src.training import train
from tests.training_helpers import fresh_python

REPO = Path(__file__).resolve().parents[1]
MID_EPOCH = ("callbacks.mid_epoch_checkpoint={_target_: src.callbacks.checkpoint.MidEpochCheckpoint, "
             "every_n_train_steps: 3, every_minutes: null}")
# 64 rows / 8 per batch = 8 steps an epoch, 16 in all; step checkpoints at 3, 6, 9, 12, 15.
RUN = ("experiment=imdb_tiny", "trainer.enable_progress_bar=false", "logger=csv", "data.limit_train=64",
       "data.limit_val=32", "data.limit_test=32", "data.max_length=64", "data.batch_size=8", "trainer.max_epochs=2",
       MID_EPOCH)


def run_args(run_dir: Path, cache: Path, *extra: str) -> list[str]:
    return [*RUN, f"run_dir={run_dir}", f"data.cache_dir={cache}", *extra]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def kill_at(step: int, args: list[str]) -> str:
    """Run training in a subprocess that SIGKILLs itself after `step` optimizer steps; its stderr."""
    done = subprocess.run([sys.executable, "-m", "tests.sigkill_run", str(step), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return done.stderr


def train_process(args: list[str]) -> dict:
    """Train to the end in a fresh interpreter, as the killed runs do (an earlier test may have changed this
    process's torch thread count, and float sums differ between thread counts); the run's metrics.json."""
    done = subprocess.run([sys.executable, "-m", "src.cli.train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return rundir.read_metrics(Path(next(a for a in args if a.startswith("run_dir=")).split("=", 1)[1]))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(data cache, run dir, summary) of the run nothing interrupts."""
    cache, run_dir = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("full")
    return cache, run_dir, train_process(run_args(run_dir, cache))


@pytest.mark.slow  # three trainings in subprocesses, about 35 s: keeps `make test` near 8 minutes here
def test_sigkill_mid_epoch_1_at_a_checkpoint_and_mid_epoch_2_resumes_bit_identical(
        uninterrupted: tuple[Path, Path, dict], tmp_path: Path) -> None:
    cache, full_dir, full = uninterrupted
    args = run_args(tmp_path, cache)
    # (kill after step, checkpoint the next run resumes from): mid-epoch 1, exactly at a checkpoint, mid-epoch 2.
    for step, resumed_from in ((5, "step-000003.ckpt"), (6, "step-000006.ckpt"), (11, "step-000009.ckpt")):
        stderr = kill_at(step, args if step == 5 else [*args, "ckpt_path=last"])
        assert "not resumable" not in stderr and "set_vital" not in stderr  # src filters torchdata's notice
        assert newest_checkpoint([tmp_path]).name == resumed_from
    resumed = train_process([*args, "ckpt_path=last"])
    assert resumed["global_step"] == full["global_step"] == 16
    expected, got = weights(full_dir), weights(tmp_path)
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)
    assert resumed["test"] == full["test"] and resumed["validation"] == full["validation"]


def test_truncated_tokenization_cache_file_is_named_and_rebuilt(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose(["experiment=imdb_tiny", f"data.cache_dir={tmp_path}", "data.limit_train=32", "data.limit_val=8",
                   "data.limit_test=8", "data.max_length=32"])

    def tokenized_train() -> list[list[int]]:
        datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
        datamodule.setup("fit")
        return list(datamodule.splits["train"].with_format(None)["input_ids"])  # read now: the file changes

    expected = tokenized_train()
    [cache_file] = (tmp_path / "tokenized").rglob("train-*.arrow")
    cache_file.write_bytes(cache_file.read_bytes()[: cache_file.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        assert tokenized_train() == expected
    assert f"Tokenization cache {cache_file} is unreadable" in caplog.text


def test_truncated_last_checkpoint_is_named_and_the_previous_one_resumed(
        uninterrupted: tuple[Path, Path, dict], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, full_dir, _ = uninterrupted
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    previous, last = checkpoints / "step-000006.ckpt", checkpoints / "last.ckpt"
    shutil.copy(next((full_dir / "checkpoints").glob("best-*.ckpt")), previous)
    data = (full_dir / "checkpoints" / "last.ckpt").read_bytes()
    last.write_bytes(data[: len(data) // 2])  # newer than `previous`, cut short as by a full disk
    with caplog.at_level(logging.WARNING):
        run_dir, ckpt = resolve_run_dir_and_ckpt(compose(["experiment=imdb_tiny", "ckpt_path=last",
                                                          f"run_dir={tmp_path}"]))
    assert (run_dir, ckpt) == (tmp_path, str(previous))
    assert f"Checkpoint {last} is damaged" in caplog.text
    assert not last.exists() and (checkpoints / "last.ckpt.damaged").is_file()  # out of the resumed run's way


def test_resumed_run_continues_its_wandb_run_offline(tmp_path: Path, data_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    args = [*run_args(tmp_path, data_cache, "logger=wandb", "data.limit_train=16", "data.limit_val=8",
                      "data.limit_test=8")]
    for part in ([*args, "trainer.max_epochs=1"], [*args, "trainer.max_epochs=2", "ckpt_path=last"]):
        time.sleep(1)  # W&B names an offline run's folder by its start second: two parts in one second share one
        try:
            train(compose(part))
        finally:
            wandb.finish()
    run_id = (tmp_path / "wandb_id").read_text()
    parts = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(parts) == 2 and all(part.endswith(f"-{run_id}") for part in parts), parts


def test_a_write_killed_midway_leaves_the_old_file_and_the_resume_drops_its_remains(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text('{"test": 1}')
    code = ("import os, signal\nfrom src.rundir import atomic_open\n"
            f"with atomic_open({str(target)!r}) as file:\n"
            "    file.write('{\"te'); file.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    done = fresh_python(code)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert target.read_text() == '{"test": 1}'
    [partial] = tmp_path.glob(".metrics.json.*.tmp")
    assert rundir.remove_partial_writes(tmp_path) == [partial] and not partial.exists()


def test_the_trainer_writes_checkpoints_through_the_atomic_writer(tmp_path: Path) -> None:
    trainer = build_trainer(to_object(compose(run_args(tmp_path, tmp_path))), tmp_path, [])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


class _SecondTraining(L.Callback):
    """Once the first training runs, start a second one in the same run directory and keep its result."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.done: subprocess.CompletedProcess | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.done = subprocess.run([sys.executable, "-m", "src.cli.train", *self.args], cwd=REPO,
                                   capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # two trainings, one in a fresh interpreter: about a minute on a busy 2-core machine
def test_a_second_training_in_a_held_run_dir_is_refused_naming_the_first(tmp_path: Path, data_cache: Path) -> None:
    args = run_args(tmp_path, data_cache, "data.limit_train=16", "data.limit_val=8", "data.limit_test=8",
                    "trainer.max_epochs=1", "callbacks=none")
    second = _SecondTraining([*args, "seed=42"])
    summary = train(compose([*args, "seed=7"]), callbacks=[second])
    assert second.done.returncode == 2
    [line] = [line for line in second.done.stderr.splitlines() if line.startswith("ERROR")]
    assert f"Run directory {tmp_path} is in use by pid {os.getpid()} on {socket.gethostname()} since" in line
    assert "Traceback" not in second.done.stderr
    assert summary["seed"] == rundir.read_metrics(tmp_path)["seed"] == rundir.read_config(tmp_path)["seed"] == 7
    assert not (tmp_path / "checkpoints" / "interrupted.ckpt").exists()


def test_the_run_dir_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    code = (f"from src.rundir import exclusive\nwith exclusive({str(tmp_path)!r}):\n"
            "    print('held', flush=True); input()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        refused = pytest.raises(ConfigError, match=f"in use by pid {holder.pid} on {socket.gethostname()} since 20")
        with refused, rundir.exclusive(tmp_path):
            pass
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    with rundir.exclusive(tmp_path):
        assert f"pid {os.getpid()} " in (tmp_path / rundir.LOCK_FILE).read_text()


def test_a_run_that_fails_at_start_writes_no_checkpoint(tmp_path: Path, data_cache: Path) -> None:
    with pytest.raises(DataError, match="/nonexistent/imdb"):
        train(compose(run_args(tmp_path, data_cache, "data.path=/nonexistent/imdb", "callbacks=none")))
    assert not list((tmp_path / "checkpoints").glob("*"))


def test_ckpt_path_last_resumes_progress_not_the_newest_failed_start(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = Path("runs", "imdb_tiny")  # where ckpt_path=last looks without a run_dir
    progress = experiment / "2026-01-01_10-00-00-000000" / "checkpoints" / "step-000003.ckpt"
    failed = experiment / "2026-01-01_11-00-00-000000" / "checkpoints" / "interrupted.ckpt"
    for path, step, mtime in ((progress, 3, 1_000_000), (failed, 0, 2_000_000)):
        path.parent.mkdir(parents=True)
        torch.save({"global_step": step, "state_dict": {}}, path)
        os.utime(path, (mtime, mtime))
    assert resolve_run_dir_and_ckpt(compose(["experiment=imdb_tiny", "ckpt_path=last"])) == (
        progress.parent.parent, str(progress))


@pytest.mark.slow  # three 2-process DDP runs: about two minutes
def test_ddp_sigkill_mid_epoch_2_resumes_bit_identical(tmp_path: Path, data_cache: Path) -> None:
    # 64 rows / (2 ranks x 8 per batch) = 4 steps an epoch, 8 in all; step checkpoints at 3 and 6 (epoch 2).
    full_dir, split_dir = tmp_path / "full", tmp_path / "split"
    ddp = ("trainer=ddp_cpu", "trainer.max_epochs=2")
    full = train_process(run_args(full_dir, data_cache, *ddp))
    kill_at(7, run_args(split_dir, data_cache, *ddp))
    assert newest_checkpoint([split_dir]).name == "step-000006.ckpt"
    resumed = train_process(run_args(split_dir, data_cache, *ddp, "ckpt_path=last"))
    assert resumed["global_step"] == full["global_step"] == 8
    expected, got = weights(full_dir), weights(split_dir)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0, msg=name)
    assert resumed["test"] == full["test"]
