"""A stable content hash: cache keys and `datasets` fingerprints that are the same in every process."""

import hashlib
import json
from typing import Any


def stable_hash(parts: Any) -> str:
    """16 hex digits of sha256 over the JSON of `parts` (dict keys sorted; unknown types as str)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
