"""LLM Optimization Lab: fine-tune, compress and compare transformer text classifiers."""

import logging

# torchao (imported by peft when installed) logs a warning for each CUDA-only kernel library it cannot
# load on a CPU build, and torch's pytree logs a deprecation per torchao enum: noise on every start-up.
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)
