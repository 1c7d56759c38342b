"""A stopped design stops its pool workers: SIGINT or SIGTERM to the driver leaves no worker process behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.config import REPO_ROOT

DRIVER = """
import sys
from pathlib import Path
from src.designs.launchers import LauncherSettings, launch
from tests.designs.test_pool_stop import sleep_forever
out = Path(sys.argv[1])
launch(LauncherSettings(workers=2), sleep_forever, [(str(out),)] * 4, ["a", "b", "c", "d"], out)
"""


def sleep_forever(directory: str) -> None:
    """A run that never ends on its own: writes its pid, then sleeps."""
    (Path(directory) / f"{os.getpid()}.pid").touch()
    time.sleep(600)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # two spawned workers importing torch: about 30 s each
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_pool_stops_its_workers(tmp_path, stop):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 120), "the two workers did not start"
        workers = [int(path.stem) for path in tmp_path.glob("*.pid")]
        driver.send_signal(stop)
        assert driver.wait(timeout=60) != 0
        assert _wait(lambda: not any(map(_alive, workers)), 20), "a worker outlived its driver"
        assert len(list(tmp_path.glob("*.pid"))) == 2  # the queued runs were cancelled, not started
    finally:
        driver.kill()
