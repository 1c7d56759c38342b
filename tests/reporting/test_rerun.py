"""`make reports RERUN=1` reruns a provenance.json's command only when it is one of this project's entry points,
as an argument list (no shell); anything else is refused in one line and runs nothing."""

import json
import logging
import sys
from pathlib import Path

import pytest

from src.cli.reports import main as reports_main
from src.errors import ConfigError
from src.reporting.archive import REPORTS_ROOT, rerun, rerun_arguments

SOURCE = Path("provenance.json")


@pytest.mark.parametrize("command", [
    "make train; touch /tmp/pwned",
    "make data-report EXP='x; touch /tmp/pwned'",
    "make data-report EXP='$(shell touch /tmp/pwned)'",
    "make -f evil.mk train",
    "python -c 'import os'",
    "python -m os",
    "sh -c 'make train'",
    "make train `touch /tmp/pwned`",
])
def test_anything_but_an_entry_point_of_this_project_is_refused(command):
    with pytest.raises(ConfigError, match="refusing to rerun"):
        rerun_arguments(command, SOURCE)


def test_the_committed_reports_rerun_as_argument_lists():
    commands = {path.parent.name: rerun_arguments(json.loads(path.read_text())["command"], path)
                for path in REPORTS_ROOT.rglob("provenance.json")}
    assert commands["compression"] == ["make", "compress-default"]
    assert commands["imdb_minilm"] == ["make", "data-report", "EXP=imdb_minilm"]
    assert commands["optimizers"] == [sys.executable, "-m", "src.cli.design", "optimizers", "publish=true"]
    assert commands["checkpoint_overhead"][1:] == ["-m", "benchmarks.checkpoint_overhead", "--repeats", "2"]


def test_a_forked_report_with_a_shell_command_runs_nothing(tmp_path, monkeypatch, caplog):
    pwned = tmp_path / "pwned"
    report = tmp_path / "reports" / "evil"
    report.mkdir(parents=True)
    (report / "design.yaml").write_text("name: evil\n")
    (report / "provenance.json").write_text(json.dumps({"command": f"make train; touch {pwned}"}))
    with pytest.raises(ConfigError, match=r"refusing to rerun `make train; touch "):
        rerun(report)
    monkeypatch.setattr("src.cli.reports.report_dirs", lambda: [report])
    with caplog.at_level(logging.ERROR):
        assert reports_main(["rerun=true"]) == 2
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert not pwned.exists()
