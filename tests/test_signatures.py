"""src.signatures reads a target's signature from its source exactly as inspect sees it after importing it, and
checking a config against it imports nothing heavy."""

import importlib
import inspect
import re

import pytest

from src.config import CONFIG_DIR, REPO_ROOT
from src.instantiate import KWARGS_GO_TO
from src.modules.schedulers import schedule_functions
from src.signatures import missing, static_signature
from tests.training_helpers import fresh_python

# Every `_target_` the configs and docs/extending.md name, plus every transformers.get_scheduler function.
SHIPPED = sorted({match for path in [*CONFIG_DIR.rglob("*.yaml"), REPO_ROOT / "docs" / "extending.md"]
                  for match in re.findall(r"_target_: *([A-Za-z_][\w.]*)", path.read_text()) if "." in match})


def _shape(signature: inspect.Signature) -> list[tuple[str, inspect._ParameterKind, bool]]:
    """Names, kinds and whether each parameter has a default: all that an argument check reads."""
    return [(p.name, p.kind, p.default is not p.empty) for p in signature.parameters.values()]


def _imported(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("path", SHIPPED + sorted(set(schedule_functions().values())) + ["lightning.Trainer"]
                         + [callee for callee, _ in KWARGS_GO_TO.values()])
def test_the_source_gives_the_signature_inspect_gives(path: str) -> None:
    static = static_signature(path)
    assert static is not None, f"{path}: not resolved from source (the check would import it)"
    assert _shape(static) == _shape(inspect.signature(_imported(path)))


def test_shipped_targets_cover_each_family() -> None:
    assert {"torch.optim.AdamW", "lightning.pytorch.callbacks.StochasticWeightAveraging",
            "lightning.pytorch.loggers.TensorBoardLogger", "src.callbacks.checkpoint.LastEpochCheckpoint",
            "lightning.pytorch.profilers.SimpleProfiler"} <= set(SHIPPED)


def test_a_name_the_module_lacks_is_known_without_importing_and_a_lazy_module_is_left_to_import() -> None:
    assert "ModelCheckpoint" in missing("lightning.pytorch.callbacks.ModelCheckpointt")
    assert "NAdam" in missing("torch.optim.NAdamm")
    assert missing("torch.optim.NAdam") is None  # present
    assert missing("transformers.NoSuchThing") is None  # a lazy module: only an import can tell
    assert static_signature("transformers.get_scheduler") is None


BAD = [["callbacks.model_checkpoint.monitr=x"], ["model.scheduler.num_cyclez=2"], ["model.optimizer.betaz=[0.9,0.9]"],
       ["logger=mlflow", "logger.mlflow.run_nam=a"], ["debug=profiler", "trainer.profiler.extendd=true"],
       ["trainer.min_epoch=2"]]


def test_a_bad_argument_is_named_without_importing_torch_lightning_or_transformers() -> None:
    code = ("import sys\n"
            "from src.config import compose\n"
            "from src.errors import ConfigError\n"
            "from src.builders import check_buildable\n"
            f"for bad in {BAD!r}:\n"
            "    try:\n"
            "        check_buildable(compose(['experiment=imdb_tiny', *bad]))\n"
            "    except ConfigError as err:\n"
            "        print(str(err).split(' for ')[0])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'lightning'}))\n")
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"Unknown argument '{bad[-1].split('=')[0]}'" for bad in BAD] + ["[]"]
