"""Project callbacks; importing this package registers each of them in `CALLBACKS` (registry.py)."""

from src.callbacks import gradual_unfreezing, pruning, qat  # noqa: F401
