"""A plain (non-editable) install works from outside the checkout and installs no generic names."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_plain_install_imports_from_outside_the_checkout(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    installed = {path.name for path in site.iterdir()}
    assert "agentgym" in installed
    assert not {"environments", "trainers", "tools", "benchmarks", "tests"} & installed
    script = (
        "import agentgym, agentgym.environments, agentgym.trainers, agentgym.tools, agentgym.cli\n"
        "print(agentgym.__file__); print(agentgym.environments.__file__)\n"
        "print(sorted(agentgym.list_envs()))\n"
    )
    # -S keeps the editable install of the checkout out of sys.path; the target holds the package.
    venv_site = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    env = {"PYTHONPATH": f"{site}:{venv_site}", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    agentgym_file, environments_file, envs = result.stdout.splitlines()
    assert agentgym_file.startswith(str(site)) and environments_file.startswith(
        str(site / "agentgym" / "environments")
    )
    assert "webshop" in envs
