"""Write and read int8 models (PTQ or QAT); load any checkpoint variant (fp32, pruned, int8) as a `TextClassifier`.

Post-training dynamic int8 (`quantize_checkpoint`, `make quantize`), the cheap alternative to QAT: every encoder
Linear (GPT-2 Conv1D included) gets int8 per-channel weights with per-batch activation quantization
(`torch.ao.quantization.quantize_dynamic`), the token embedding 8-bit rows. It writes
<run_dir>/compression/ptq_int8.safetensors, the same format as the QAT callback's qat_int8.safetensors.
"""

from pathlib import Path
from typing import Any

from torch import nn

from src.compression.int8_format import LEGACY_SUFFIX, SUFFIX, load_int8_state, save_int8
from src.compression.quantization import quantize_int8, quantize_named
from src.compression.structure import normalize_record, remove_units
from src.errors import ConfigError
from src.modules.anatomy import HEAD_NAMES
from src.modules.text_classifier import TextClassifier
from src.rundir import run_dir_of


def export_int8(model: nn.Module, hyper_parameters: dict[str, Any], out: Path, method: str,
                units: dict[str, Any] | None = None, source: str | None = None,
                exclude: tuple[str, ...] = HEAD_NAMES, embeddings: bool = True) -> Path:
    """Quantize a plain fp32 model (masks folded, pruned `units` already removed) to int8 and save it (safetensors)
    with what rebuilds its architecture offline: TextClassifier hyper-parameters, config, unit record."""
    qmodel, quantized = quantize_int8(model, exclude, embeddings)
    hparams = {k: v for k, v in hyper_parameters.items() if k != "hf_config"}
    units = {kind: {str(k): v for k, v in found.items()} for kind, found in normalize_record(units).items()}
    return save_int8(qmodel.state_dict(), {"method": method, "source": source, "hyper_parameters": hparams,
                                           "hf_config": model.config.to_dict(), "units": units,
                                           "quantized": quantized}, out)


def quantize_checkpoint(ckpt: Path, out: Path | None = None, embeddings: bool = True) -> Path:
    """Write the PTQ int8 model of `ckpt` (default <run_dir>/compression/ptq_int8.safetensors); returns its path."""
    module = TextClassifier.from_checkpoint(ckpt).eval()
    out = out or run_dir_of(ckpt) / "compression" / "ptq_int8.safetensors"
    return export_int8(module.model, dict(module.hparams), out, "ptq", module.pruned_units, str(ckpt),
                       embeddings=embeddings)


def load_int8(path: Path) -> TextClassifier:
    """A `TextClassifier` whose model is the saved int8 model (CPU inference)."""
    state, saved = load_int8_state(path)
    module = TextClassifier(**saved["hyper_parameters"], hf_config=saved["hf_config"])
    remove_units(module.model, normalize_record(saved["units"]))
    module.model = quantize_named(module.model.eval(), saved["quantized"])
    module.model.load_state_dict(state)
    return module.eval()


def load_variant(path: Path) -> TextClassifier:
    """An fp32 Lightning checkpoint (pruned units removed for real) or an int8 export, ready for eval."""
    if not Path(path).is_file():
        raise ConfigError(f"Model file not found: {path}.")
    if Path(path).suffix in (SUFFIX, LEGACY_SUFFIX):
        return load_int8(Path(path))
    return TextClassifier.from_checkpoint(path).eval()
