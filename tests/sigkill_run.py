"""`python -m tests.sigkill_run STEP OVERRIDES...`: train, and SIGKILL this process once `STEP` optimizer steps are
done (every callback of that step has run: a crash right after step STEP). For the fault-tolerance tests."""

import os
import signal
import sys

import lightning as L

from src import training
from src.config import compose


class KillAt(L.Callback):
    """SIGKILL (no clean-up, no exception hooks) before the batch after global step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(step: int, overrides: list[str]) -> None:
    training.train(compose(overrides), callbacks=[KillAt(step)])


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
