"""mrcnn_np.paths finds the repository from the package, wherever the process was started."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrcnn_np import paths

REPO = Path(__file__).resolve().parents[1]


def test_repo_root_is_the_clone_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)                       # as a notebook started elsewhere (Colab)
    assert paths.repo_root() == REPO
    assert paths.results_dir() == REPO / "results"
    assert paths.data_dir() == REPO / "data"
    assert paths.runs_dir() == REPO / "runs"
    assert (paths.results_dir() / "ablation_roi.json").is_file()   # the committed results are found


def test_installed_without_the_repository_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    site = tmp_path / "site-packages" / "mrcnn_np"     # a regular install: the package alone
    site.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"without its repository.*pip install -e.*MRCNN_NP_REPO"):
        paths.repo_root(site / "paths.py")


def test_the_environment_variable_overrides_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, str(REPO))
    assert paths.repo_root(tmp_path / "mrcnn_np" / "paths.py") == REPO
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"MRCNN_NP_REPO.*is not a mrcnn_np repository"):
        paths.repo_root()
