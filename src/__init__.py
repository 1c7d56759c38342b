"""LLM Optimization Lab: fine-tune, compress and compare transformer text classifiers."""

import logging
import warnings

# torchao (imported by peft when installed) logs a warning for each CUDA-only kernel library it cannot
# load on a CPU build, and torch's pytree logs a deprecation per torchao enum: noise on every start-up.
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

# Lightning 2.6's result collection builds torch's deprecated `LeafSpec` (lightning/pytorch/utilities/_pytree.py),
# and copying an exported graph (copyreg) rebuilds its input spec, so torch 2.13 prints a FutureWarning at the start
# of every fit and every int8 graph copy. Lightning's and torch's to fix and harmless here: ignored for that message
# from those modules only.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning,
                        module=r"lightning\.pytorch\.utilities\._pytree|copyreg")

# torchdata 0.11's StatefulDataLoader (the train loader: resumable mid-epoch) calls torch.set_vital, deprecated in
# torch 2.13, each time it is built. torchdata's to fix and harmless: ignored for that message from that module only.
warnings.filterwarnings("ignore", message=r"'set_vital' is deprecated", category=UserWarning,
                        module=r"torchdata\.stateful_dataloader\.stateful_dataloader")
