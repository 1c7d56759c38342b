"""Issue 12's targets for int8 CPU serving, judged on a compression report's rows, and the backend to use.

Targets (batch 32): on a CPU with VNNI the best int8 backend is >= 2.5x faster than the fastest non-int8
configuration of the same model (fp32 or bf16, eager or compiled, or ONNX Runtime fp32), so the gain is int8's
own; on any CPU every int8 backend loses <= 0.5 accuracy points, agrees with fp32 on >= 98 % of predictions
(both on the validation split; reports from before validation scoring: on test) and is >= 3.5x smaller; the
exported ONNX fp32 logits are within 1e-4 of PyTorch's.
"""

from typing import Any

INT8_BACKENDS = ("ptq_int8", "qat_int8", "ort_int8", "inductor_int8", "inductor_int8_bf16")
FLOAT_BACKENDS = ("fp32", "fp32_compiled", "bf16", "bf16_compiled", "ort_fp32")
BACKENDS = (*FLOAT_BACKENDS, *INT8_BACKENDS)  # what serves the fp32 model's task, recommended among
# The fp32 model itself in another configuration (QAT is a retrained model): left unscored when slower than fp32.
SAME_MODEL = tuple(name for name in BACKENDS if name not in ("fp32", "qat_int8"))
MIN_SPEEDUP, MAX_DROP_PTS, MIN_AGREEMENT, MIN_SMALLER, MAX_PARITY = 2.5, 0.5, 0.98, 3.5, 1e-4


def _verdict(passed: list[str], failed: list[str]) -> str:
    if not passed and not failed:
        return "not measured"
    return "; ".join(part for part in (f"met by {', '.join(passed)}" if passed else "",
                                       f"missed by {', '.join(failed)}" if failed else "") if part)


def _per_backend(rows: list[dict[str, Any]], key: str, ok: Any, shown: Any) -> dict[str, str]:
    """One target judged on every int8 row: what each measured, and which met it."""
    int8 = [r for r in rows if r["variant"] in INT8_BACKENDS]
    measured = [f"{r['variant']} {shown(r[key]) if key in r else 'not scored'}" for r in int8]
    int8 = [r for r in int8 if key in r]
    return {"measured": ", ".join(measured) or "–",
            "verdict": _verdict([r["variant"] for r in int8 if ok(r[key])],
                                [r["variant"] for r in int8 if not ok(r[key])])}


def best_float(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest non-int8 configuration of the fp32 model at batch 32 (fp32 eager when it is the only one)."""
    return min((r for r in rows if r["variant"] in FLOAT_BACKENDS), key=lambda r: r["b32_median_ms"])


def _speed(rows: list[dict[str, Any]], machine: dict[str, Any]) -> dict[str, str]:
    """The best int8 backend's median batch-32 speed-up over the fastest non-int8 row, judged only with VNNI."""
    int8 = [r for r in rows if r["variant"] in INT8_BACKENDS]
    if not int8:
        return {"measured": "–", "verdict": "not measured"}
    best = max(int8, key=lambda r: r["speedup_best_float_b32_median"])
    gain = best["speedup_best_float_b32_median"]
    reference = best_float(rows)["variant"]
    measured = f"{best['variant']} {gain:.2f}× {reference}" + (
        "" if reference == "fp32" else f" ({best['speedup_b32_median']:.2f}× fp32 eager)")
    if not machine.get("vnni"):
        return {"measured": measured, "verdict": "not applicable: this CPU has no VNNI"}
    return {"measured": measured, "verdict": "met" if gain >= MIN_SPEEDUP else "missed"}


def _judged_on(rows: list[dict[str, Any]]) -> str:
    """The key prefix accuracy targets are judged with: validation, or test for a report without validation (read
    off the fp32 row, which is always scored)."""
    return "val_" if "val_accuracy" in rows[0] else ""


def judge(report: dict[str, Any]) -> list[dict[str, str]]:
    """Every target with what was measured and its verdict."""
    rows, split = report["rows"], _judged_on(report["rows"])
    parity, on = report.get("onnx_parity"), "validation" if split else "test"
    return [
        {"target": f"VNNI CPU: best int8 ≥ {MIN_SPEEDUP}× faster than the fastest non-int8 row (b32)",
         **_speed(rows, report["machine"])},
        {"target": f"accuracy drop ≤ {MAX_DROP_PTS} pt ({on})",
         **_per_backend(rows, f"{split}acc_drop_pts", lambda v: v <= MAX_DROP_PTS, lambda v: f"{v:+.2f}")},
        {"target": f"agreement with fp32 ≥ {MIN_AGREEMENT:.0%} ({on})",
         **_per_backend(rows, f"{split}agreement", lambda v: v >= MIN_AGREEMENT, lambda v: f"{100 * v:.1f}%")},
        {"target": f"≥ {MIN_SMALLER}× smaller",
         **_per_backend(rows, "size_ratio", lambda v: v >= MIN_SMALLER, lambda v: f"{v:.2f}×")},
        {"target": f"ONNX fp32 logits within {MAX_PARITY:g} of PyTorch",
         "measured": f"max |Δ| {parity['max_abs_diff']:.1e}" if parity else "–",
         "verdict": ("met" if parity["max_abs_diff"] <= MAX_PARITY else "missed") if parity else "not measured"},
    ]


def recommend(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest backend at batch 32 among those within the accuracy and agreement targets on validation (test
    for a report without validation scores); fp32 always is."""
    split = _judged_on(rows)
    fit = [r for r in rows if r["variant"] in BACKENDS
           and (r["variant"] == "fp32" or (r.get(f"{split}acc_drop_pts", float("inf")) <= MAX_DROP_PTS
                                           and r.get(f"{split}agreement", 0) >= MIN_AGREEMENT))]
    return min(fit, key=lambda r: r["b32_median_ms"]) if fit else None


def targets_markdown(report: dict[str, Any]) -> str:
    """The targets table and the recommendation, as Markdown."""
    table = "".join(f"| {t['target']} | {t['measured']} | {t['verdict']} |\n" for t in judge(report))
    best = recommend(report["rows"])
    missing = [name for name in BACKENDS if name not in {r["variant"] for r in report["rows"]}]
    advice = (f"**Recommended backend on this machine: {best['variant']}** ({best['b32_median_ms']:.0f} ms per "
              f"batch of 32, {best['speedup_b32_median']:.2f}× fp32): the fastest backend of the same model "
              f"within {MAX_DROP_PTS} pt accuracy and {MIN_AGREEMENT:.0%} agreement on the "
              f"{'validation' if _judged_on(report['rows']) else 'test'} examples."
              if best else "No backend of the fp32 model was measured.")
    note = f" Not measured in this report: {', '.join(missing)}." if missing else ""
    return ("\n## Targets (issue 12)\n\n| target | measured | verdict |\n|---|---|---|\n" + table
            + f"\n{advice}{note}\n")
