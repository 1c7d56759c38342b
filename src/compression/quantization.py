"""Int8 for CPU inference: post-training dynamic quantization, QAT fake quantization, one export format.

Both routes end in the same model: every selected Linear becomes `torch.ao.nn.quantized.dynamic.Linear`
(int8 per-channel weights, activations quantized per batch by the fbgemm/x86 kernel) and, optionally,
every Embedding becomes an 8-bit per-row `torch.ao.nn.quantized.Embedding`. GPT-2's `Conv1D`, which
the quantization APIs skip, is first turned into the equivalent `nn.Linear` (weight transposed).
"""

import copy
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    float_qparams_weight_only_qconfig,
    per_channel_dynamic_qconfig,
    quantize_dynamic,
)
from torch.nn.utils import prune
from transformers.pytorch_utils import Conv1D

from src.modules.anatomy import HEAD_NAMES, WEIGHT_LAYERS, named_in


def conv1d_to_linear(model: nn.Module) -> list[str]:
    """Replace every GPT-2 `Conv1D` (y = x W + b, W: in x out) by the same `nn.Linear` (W transposed)."""
    converted = []
    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            linear = nn.Linear(module.nx, module.nf, device=module.weight.device, dtype=module.weight.dtype)
            linear.weight.data.copy_(module.weight.detach().t())
            linear.bias.data.copy_(module.bias.detach())
            model.set_submodule(name, linear)
            converted.append(name)
    return converted


def quantizable_linears(model: nn.Module, exclude: tuple[str, ...] = HEAD_NAMES) -> list[str]:
    """Names of the Linear / Conv1D layers to quantize (the classification head stays fp32 by default)."""
    return [name for name, module in model.named_modules()
            if isinstance(module, WEIGHT_LAYERS) and not named_in(name, exclude)]


def quantize_int8(model: nn.Module, exclude: tuple[str, ...] = HEAD_NAMES,
                  embeddings: bool = True) -> tuple[nn.Module, dict[str, list[str]]]:
    """An int8 copy of a plain `model` (masks folded, no fake quant) and the names of the quantized layers."""
    qmodel = copy.deepcopy(model).cpu().eval()
    conv1d_to_linear(qmodel)
    # only the token embedding (the large one): position / type lookups get non-contiguous indices
    word = qmodel.get_input_embeddings()
    names = {"linear": quantizable_linears(qmodel, exclude),
             "embedding": [n for n, m in qmodel.named_modules() if embeddings and m is word]}
    return quantize_named(qmodel, names), names


def quantize_named(model: nn.Module, names: dict[str, list[str]]) -> nn.Module:
    """Quantize, in place, exactly the named Linear (int8 dynamic) and Embedding (8-bit rows) layers."""
    conv1d_to_linear(model)
    spec: dict[str, Any] = {name: per_channel_dynamic_qconfig for name in names["linear"]}
    spec.update({name: float_qparams_weight_only_qconfig for name in names["embedding"]})
    return quantize_dynamic(model, spec, inplace=True)


def weight_fake_quant(ch_axis: int) -> FakeQuantize:
    """Per-output-channel symmetric int8, scale from the current weights: what `quantize_dynamic` will use."""
    return FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, averaging_constant=1.0,
                        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=ch_axis,
                        quant_min=-128, quant_max=127)


def input_fake_quant() -> FakeQuantize:
    """Per-tensor affine uint8 over the current batch's range with reduce_range, as the x86 dynamic kernel."""
    return FakeQuantize(observer=MovingAverageMinMaxObserver, averaging_constant=1.0, dtype=torch.quint8,
                        qscheme=torch.per_tensor_affine, quant_min=0, quant_max=127)


def _fake_quant_pre_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Fake-quantize the (pruning-masked) weight and the input before the layer's own forward."""
    module.weight = module.weight_fake_quant(module.weight)
    return (module.input_fake_quant(args[0]), *args[1:])


def attach_fake_quant(model: nn.Module, exclude: tuple[str, ...] = HEAD_NAMES) -> list[str]:
    """Start int8 QAT in place: weight + input fake quantization on every selected Linear / Conv1D.

    torch.ao's eager QAT modules fake-quantize only weights in their dynamic variant and skip Conv1D, so
    this reuses their `FakeQuantize` inside a hook instead. `prune.identity` re-parametrises the weight as
    `weight_orig` (the same Parameter object: optimizer and DDP keep working) so that the hook, which runs
    after any pruning mask, can replace it every forward.
    """
    names = quantizable_linears(model, exclude)
    for name in names:
        module = model.get_submodule(name)
        if not hasattr(module, "weight_orig"):
            prune.identity(module, "weight")
        module.add_module("weight_fake_quant", weight_fake_quant(1 if isinstance(module, Conv1D) else 0)
                          .to(module.weight_orig.device))
        module.add_module("input_fake_quant", input_fake_quant().to(module.weight_orig.device))
        module.register_forward_pre_hook(_fake_quant_pre_hook)
    return names


def keep_fake_quant_last(model: nn.Module) -> None:
    """Move the QAT hook behind pruning hooks (re)registered since, so it sees the masked weights."""
    for module in model.modules():
        hooks = module._forward_pre_hooks
        ids = [key for key, hook in hooks.items() if hook is _fake_quant_pre_hook]
        if ids and next(reversed(hooks)) != ids[0]:
            hooks.move_to_end(ids[0])


def detach_fake_quant(model: nn.Module) -> None:
    """End QAT: drop the fake-quant hooks and modules (pruning masks, if any, stay)."""
    for module in model.modules():
        for key in [k for k, h in module._forward_pre_hooks.items() if h is _fake_quant_pre_hook]:
            del module._forward_pre_hooks[key]
        for child in ("weight_fake_quant", "input_fake_quant"):
            if child in module._modules:
                del module._modules[child]


def drop_fake_quant_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict without fake-quant observer buffers (they are recomputed from the weights)."""
    return {k: v for k, v in state_dict.items()
            if ".weight_fake_quant." not in k and ".input_fake_quant." not in k}


