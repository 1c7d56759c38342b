"""The Hugging Face Hub seen from this machine: whether it answers, and what to run instead when it does not.

Shared by the model builder (models and tokenizers), the data sources (datasets by name) and the export (push).
"""

import os
import socket
from urllib.parse import urlparse

OFFLINE_HINT = (
    "Run the offline default instead: `make train` (EXP=imdb_minilm), or point "
    "model.name_or_path / data.path at local files."
)


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face Hub answers a TCP connection (and offline mode is not forced)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
