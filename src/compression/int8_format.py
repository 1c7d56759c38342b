"""The int8 model file: a safetensors file, so nothing is unpickled when a user loads one they downloaded.

safetensors holds plain tensors and string metadata, while a `torch.ao` int8 state dict also holds quantized
tensors (inside (weight, bias) tuples for dynamic Linear layers) and dtypes. Each quantized tensor is stored as
its integer values, per-channel scales and zero points (`<key>.int_repr`, `.scales`, `.zero_points`) and rebuilt
with `torch._make_per_channel_quantized_tensor`; tuples, dtypes, the modules' state-dict versions and the model
description travel as JSON metadata.
"""

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from src.errors import ConfigError
from src.rundir import load_checkpoint

FORMAT = "llm-lab-int8/2"
SUFFIX = ".safetensors"
LEGACY_FORMAT, LEGACY_SUFFIX = "llm-lab-int8/1", ".pt"  # pickled; still read, with weights_only=True


def _encode(key: str, value: Any, tensors: dict[str, torch.Tensor], layout: dict[str, Any]) -> None:
    """Add one state-dict entry to `tensors` (safetensors-storable) and `layout` (how to rebuild it)."""
    if isinstance(value, tuple):
        layout[key] = {"tuple": len(value)}
        for index, item in enumerate(value):
            _encode(f"{key}.{index}", item, tensors, layout)
    elif value is None:
        layout[key] = {"none": True}
    elif isinstance(value, torch.dtype):
        layout[key] = {"dtype": str(value).removeprefix("torch.")}
    elif value.is_quantized:
        if value.qscheme() not in (torch.per_channel_affine, torch.per_channel_affine_float_qparams):
            raise ValueError(f"{key}: only per-channel int8 tensors are stored, not {value.qscheme()}.")
        layout[key] = {"quantized": value.q_per_channel_axis()}
        tensors.update({f"{key}.int_repr": value.int_repr(), f"{key}.scales": value.q_per_channel_scales(),
                        f"{key}.zero_points": value.q_per_channel_zero_points()})
    else:
        layout[key] = {"tensor": True}
        tensors[key] = value.detach().contiguous()


def _decode(key: str, tensors: dict[str, torch.Tensor], layout: dict[str, Any]) -> Any:
    """One state-dict entry rebuilt from the stored tensors and its layout."""
    kind = layout[key]
    if "tuple" in kind:
        return tuple(_decode(f"{key}.{index}", tensors, layout) for index in range(kind["tuple"]))
    if "none" in kind:
        return None
    if "dtype" in kind:
        return getattr(torch, kind["dtype"])
    if "quantized" in kind:
        return torch._make_per_channel_quantized_tensor(tensors[f"{key}.int_repr"], tensors[f"{key}.scales"],
                                                        tensors[f"{key}.zero_points"], kind["quantized"])
    return tensors[key]


def save_int8(state_dict: dict[str, Any], description: dict[str, Any], path: Path) -> Path:
    """Write an int8 state dict and its JSON-serialisable `description` (architecture, method, ...) to `path`."""
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, Any] = {}
    for key, value in state_dict.items():
        _encode(key, value, tensors, layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "keys": json.dumps(list(state_dict)), "layout": json.dumps(layout),
                "versions": json.dumps(getattr(state_dict, "_metadata", {})), "description": json.dumps(description)}
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_legacy_int8(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, description) of a `llm-lab-int8/1` .pt file, unpickled with weights_only=True (tensors,
    quantized tensors, dtypes and plain containers only: no code runs)."""
    saved = load_checkpoint(path, keys=("state_dict",))
    if saved.get("format") != LEGACY_FORMAT:
        raise ConfigError(f"{path} is not an int8 model written by `make quantize` or the qat callback.")
    return saved.pop("state_dict"), saved


def load_int8_state(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, description) of an int8 model file written by `save_int8` (or an older .pt one)."""
    if Path(path).suffix == LEGACY_SUFFIX:
        return load_legacy_int8(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{path} is not a readable int8 model file: {err}.") from None
    if metadata.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an int8 model written by `make quantize` or the qat callback.")
    layout = json.loads(metadata["layout"])
    state = OrderedDict((key, _decode(key, tensors, layout)) for key in json.loads(metadata["keys"]))
    state._metadata = json.loads(metadata["versions"])  # per-module versions: load_state_dict reads them
    return state, json.loads(metadata["description"])
