"""What this machine can run fast: the CPU's ISA extensions and the precision `trainer.precision=auto` picks.

No torch import at module level: the CPU half reads /proc/cpuinfo, so a config is resolved in well under a second;
torch is asked only about a GPU.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# /proc/cpuinfo flags of the extensions that decide training and int8 speed on a CPU.
ISA_FLAGS = {"avx2": {"avx2"}, "avx512": {"avx512f"}, "vnni": {"avx512_vnni", "avx_vnni"}, "amx": {"amx_tile"},
             "bf16": {"amx_bf16", "avx512_bf16"}}
BF16_PRECISIONS = ("bf16-mixed", "bf16-true")


def _cpuinfo(field: str) -> str:
    """The first value of `field` in /proc/cpuinfo ('' off Linux)."""
    path = Path("/proc/cpuinfo")
    lines = path.read_text().splitlines() if path.is_file() else []
    return next((value.strip() for key, _, value in (line.partition(":") for line in lines)
                 if key.strip() == field), "")


def cpu_info() -> dict[str, Any]:
    """CPU model, core count and the ISA extensions that decide CPU speed (bf16 needs AMX/AVX512-BF16, int8 VNNI)."""
    flags = set(_cpuinfo("flags").split())
    return {"cpu": _cpuinfo("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), **{name: bool(flags & wanted) for name, wanted in ISA_FLAGS.items()}}


def cpu_ghz() -> float:
    """The CPU clock /proc/cpuinfo reports, in GHz (0.0 where it reports none): for peak-FLOP arithmetic."""
    return float(_cpuinfo("cpu MHz") or 0) / 1000


def cpu_isa(info: dict[str, Any] | None = None) -> str:
    """The widest matrix ISA of the CPU, as a name people know: amx, avx512-bf16, avx512, avx2 or baseline."""
    info = info or cpu_info()
    if info["amx"]:
        return "amx"
    if info["bf16"]:
        return "avx512-bf16"
    return next((name for name in ("avx512", "avx2") if info[name]), "baseline")


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run trains in and why (printed at start, saved in the run's config and provenance)."""

    precision: str
    reason: str
    warning: str | None = None


def _gpu_bf16() -> bool:
    import torch  # only a GPU run asks, and it needs torch anyway

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _on_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def choose_precision(precision: str, accelerator: str, info: dict[str, Any] | None = None) -> PrecisionChoice:
    """Resolve `auto` (bf16-mixed where the CPU has AMX / AVX512-BF16 or the GPU supports bf16, else 32-true on a
    CPU and 16-mixed on an older GPU); an explicit bf16 on a CPU without bf16 units is kept, with a warning."""
    if _on_gpu(accelerator):
        bf16 = _gpu_bf16()
        chosen = precision if precision != "auto" else "bf16-mixed" if bf16 else "16-mixed"
        return PrecisionChoice(chosen, f"GPU {'with' if bf16 else 'without'} bf16")
    isa = cpu_isa(info)
    has_bf16 = isa in ("amx", "avx512-bf16")
    reason = f"CPU ISA {isa}: " + ("has bf16 units" if has_bf16 else "no bf16 units, auto picks 32-true")
    if precision == "auto":
        return PrecisionChoice("bf16-mixed" if has_bf16 else "32-true", reason)
    warning = None
    if precision in BF16_PRECISIONS and not has_bf16:
        warning = (f"trainer.precision={precision} on a CPU without bf16 units ({isa}): bf16 is emulated and trains "
                   "slower than 32-true here (benchmarks/results.md); trainer.precision=auto picks 32-true.")
    return PrecisionChoice(precision, reason, warning)
