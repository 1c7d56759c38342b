"""Run by test_ddp_sampler.py: a real 2-process CPU DDP fit (gloo) of the datamodule's weighted sampler.

Each rank writes, per epoch, the full weighted draw its sampler made and the rows its batches held, so
the test can check that both ranks drew the same order and that their shares partition it.
Usage: python ddp_sampler_run.py <data folder> <cache dir> <out dir>
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Sampler

from src.callbacks.epoch_seed import EpochSeed
from src.config import compose
from src.datamodules.text_classification import TextClassificationDataModule
from src.modules.model_builder import load_tokenizer


class RecordingSampler(Sampler[int]):
    """Passes the real sampler's draw through, keeping a copy of each epoch's draw."""

    def __init__(self, inner: Sampler[int]) -> None:
        self.inner = inner
        self.draws: list[list[int]] = []

    def __iter__(self) -> Iterator[int]:
        draw = [int(i) for i in self.inner]
        self.draws.append(draw)
        return iter(draw)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)  # Lightning's DistributedSamplerWrapper forwards the epoch to the sampler it wraps

    def __len__(self) -> int:
        return len(self.inner)


class RowTaggedDataModule(TextClassificationDataModule):
    """Adds a `row` column to the tokenized train split so batches say which rows they hold."""

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if "row" not in self.splits["train"].column_names:
            self.splits["train"] = self.splits["train"].add_column(
                "row", list(range(len(self.splits["train"])))
            )

    def train_sampler(self) -> Sampler[int] | None:
        self.recorder = RecordingSampler(super().train_sampler())
        return self.recorder


class RowRecorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.rows: dict[int, list[int]] = {}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.rows.setdefault(self.current_epoch, []).extend(batch["row"].tolist())
        return self.weight.sum() * batch["labels"].float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(data_dir: str, cache_dir: str, out_dir: str) -> None:
    cfg = compose(
        [
            "experiment=imdb_tiny",
            f"data.path={data_dir}",
            f"data.cache_dir={cache_dir}",
            "data.limit_train=null",
            "data.limit_val=null",
            "data.limit_test=null",
            "data.max_length=16",
            "data.balancing.strategy=weighted_sampler",
            "data.batch_size=50",
        ]
    )
    L.seed_everything(cfg.seed)
    dm = RowTaggedDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    module = RowRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochSeed(cfg.seed)],
    )
    trainer.fit(module, datamodule=dm)
    labels = [int(y) for y in dm.splits["train"].with_format(None)["labels"]]
    result = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "labels": labels,
        "draws": dm.recorder.draws,
        "rows": {str(k): v for k, v in module.rows.items()},
        # the train loader is a StatefulDataLoader: Lightning hands the wrapped sampler to its batch sampler
        "sampler": type(trainer.train_dataloader.batch_sampler.sampler).__name__,
    }
    Path(out_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
