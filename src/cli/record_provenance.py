"""Write <dir>/provenance.json for a result: the command that made it, git commit, packages, machine (src.provenance).

    python -m src.cli.record_provenance dir=reports/compression "command=make compress-default"

Used by the make targets that write committed reports (`make reports RERUN=1` reruns the recorded command).
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.provenance import write_provenance

log = logging.getLogger("src.cli.record_provenance")


@dataclass
class ProvenanceOptions:
    dir: Path = MISSING  # the report directory
    command: str = MISSING  # the command that produced it, as a reader would rerun it


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, ProvenanceOptions).options
    print(write_provenance(options.dir, options.command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
