"""The ``cfx`` command: run / list / show / --help, exit codes and messages."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cfx.cli import main
import cfx.models
import cfx.search

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "quickstart_smoke.yaml")


@pytest.fixture(scope="module", autouse=True)
def _no_compile_cache():
    """In-process runs leave JAX's persistent cache alone (never the user's ~/.cache); the cache
    itself is tested with real processes in test_compile_cache.py."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CFX_COMPILE_CACHE", "off")
        yield


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished smoke run made through the command line, with progress on and stderr a
    file, not a terminal (as in CI or ``cfx run ... 2> log``): (folder, what went to stderr)."""
    out = tmp_path_factory.mktemp("cli") / "qs"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        mp.setenv("CFX_COMPILE_CACHE", str(out.parent / "cache"))  # the flag wins: never created
        assert main(["run", SMOKE, "--out", str(out), "--no-compile-cache"]) == 0
    return out, err.getvalue()


@pytest.fixture(scope="module")
def finished(finished_run):
    return finished_run[0]


def test_progress_in_a_log_is_plain_lines_not_redraws(finished_run):
    _, err = finished_run
    assert "\r" not in err and "\x1b" not in err  # no bar redraws, no terminal escapes
    done = [line for line in err.splitlines() if line.endswith(" s)") and "done" in line]
    assert [line.split()[1] for line in done] == ["[1/3]", "[2/3]", "[3/3]"]
    assert done[0].startswith("quickstart_smoke: [1/3] cats_dogs/mlp/generic/run000 done (")
    assert sum("training" in line for line in err.splitlines()) == 1  # one line per trained model


def test_run_prints_table_and_writes_folder(finished, capsys):
    assert (finished / "summary.md").exists() and (finished / "figures" / "cats_dogs_mlp_2d.png").exists()
    assert main(["show", str(finished)]) == 0
    out = capsys.readouterr().out
    assert "| dataset | model | generator |" in out and "wachter" in out and "validity" in out
    assert "search time" in out


def test_no_compile_cache_is_recorded_and_leaves_the_cache_alone(finished):
    assert not (finished.parent / "cache").exists()
    env = json.loads((finished / "environment.json").read_text())
    assert (
        env["compile_cache"]
        == env["sessions"][-1]["compile_cache"]
        == {"enabled": False, "dir": None, "reason": "switched off"}
    )


def test_show_metrics_option_and_bad_folders(finished, tmp_path, capsys):
    assert main(["show", str(finished), "--metrics", "l1,validity"]) == 0
    header = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| dataset")][0]
    assert header == "| dataset | model | generator | l1 | validity |"
    assert main(["show", str(tmp_path)]) == 2
    assert "not a cfx results folder" in capsys.readouterr().err


def test_rerun_of_a_finished_experiment_reuses_its_cells(finished, capsys, monkeypatch):
    monkeypatch.setattr(cfx.search, "generate", lambda *a, **k: pytest.fail("a finished cell was recomputed"))
    monkeypatch.setattr(cfx.models, "fit", lambda *a, **k: pytest.fail("a saved model was trained again"))
    for flags in ([], ["--resume"]):  # a finished run of the same experiment: just its table again
        assert main(["run", SMOKE, "--out", str(finished), "--no-progress", *flags]) == 0
        assert "| cats_dogs | mlp | dice |" in capsys.readouterr().out


def test_different_experiment_is_refused(finished, capsys):
    before = (finished / "config.yaml").read_text()
    assert main(["run", SMOKE, "--out", str(finished), "--set", "seed=5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "different experiment" in err and "--force" in err and "seed: 0 -> 5" in err
    assert (finished / "config.yaml").read_text() == before


def test_config_typo_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cfx.models, "fit", lambda *a, **k: pytest.fail("training started"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {SMOKE}\ngenerators: [{{name: wachter, lamda: 0.1}}]\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "generators[0].lamda" in err and "did you mean 'cost'" in err and str(bad) in err
    assert not (tmp_path / "o").exists()
    assert main(["run", SMOKE, "--set", "search.max_steps=0", "--out", str(tmp_path / "o")]) == 2
    assert "search.max_steps: must be > 0" in capsys.readouterr().err


def test_missing_data_file_exit_code_and_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cfx.models, "fit", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setenv("CFX_DATA_DIR", str(tmp_path))
    code = main(
        ["run", SMOKE, "--set", "data={name: gmsc, n: 100}", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "give_me_some_credit" in err and str(tmp_path) in err


def test_interrupt_message_and_exit_code(tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cfx.search, "generate", interrupt)
    out = tmp_path / "o"
    assert main(["run", SMOKE, "--out", str(out), "--no-progress"]) == 130
    assert "--resume" in capsys.readouterr().err
    assert main(["show", str(out)]) == 1
    assert "unfinished run, 0 of 3 cells done" in capsys.readouterr().out


def test_dry_run_prints_resolved_config(capsys):
    assert main(["run", SMOKE, "--dry-run", "--set", "runs=4"]) == 0
    out = capsys.readouterr().out
    assert "name: quickstart_smoke" in out and "runs: 4" in out and "= 12 cells" in out


def test_list_sections(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in (
        "data sets:",
        "models:",
        "generators:",
        "metrics:",
        "moons",
        "gmsc",
        "ensemble",
        "wachter",
        "conservative",
        "validity",
        "implausibility",
        "experiment kinds:",
        "benchmark",
    ):
        assert word in out
    assert main(["list", "generators"]) == 0
    out = capsys.readouterr().out
    assert "generators:" in out and "metrics:" not in out and "dice" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--help"], ["run", "list", "show"]),
        (
            ["run", "--help"],
            [
                "--set",
                "--resume",
                "--force",
                "--data-dir",
                "--out",
                "examples",
                "--compile-cache",
                "--no-compile-cache",
            ],
        ),
        (["list", "--help"], ["datasets", "generators", "metrics", "kinds"]),
        (["show", "--help"], ["RESULT_DIR"]),
    ],
)
def test_help_everywhere(argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    for w in words:
        assert w in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m_cfx():
    proc = subprocess.run(
        [sys.executable, "-m", "cfx", "list", "models"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "mlp" in proc.stdout and "linear" in proc.stdout
