"""The built wheel holds everything the app reads at run time, and installed (not editable) into a fresh
virtualenv it runs `workbench demo` and `workbench serve` from a folder far from the checkout.

The wheel is built from a copy of the working tree (so nothing is written into the checkout). The
fresh virtualenv gets only the wheel; its dependencies come from the dev virtualenv's site-packages
through a .pth file (they are the same pinned packages; reinstalling torch for a test would take
minutes), which does not make the checkout importable: the test checks `workbench` is the wheel's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from browser import free_port, wait_until_healthy

from workbench import config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = config.ROOT
SKIP = {".venv", ".git", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "values-workbench"
    def ignore(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == ROOT  # the checkout's own database folder, not the package's data/
        return [n for n in names if n in SKIP or n.endswith(".egg-info") or (top and n == "data")]

    shutil.copytree(ROOT, source, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True, cwd=out, timeout=300)
    wheels = list(out.glob("values_workbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def package_files() -> set[str]:
    """Every file of the package in the checkout, as a wheel names it."""
    return {str(p.relative_to(ROOT)) for p in (ROOT / "workbench").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_wheel_holds_every_file_of_the_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.startswith("values_workbench-")}
    assert package_files() - names == set(), "the app would miss these outside the checkout"
    for needed in ("workbench/schemas/001_initial.sql", "workbench/schemas/export/cards.schema.json",
                   "workbench/schemas/fit.schema.json", "workbench/data/demo.yaml", "workbench/data/demo_values.yaml",
                   "workbench/webapp/main.py", "workbench/webapp/views/participant.py",
                   "workbench/components/moral_graph/index.html"):
        assert needed in names
    assert not {n for n in names if n.startswith(("tests/", "benchmarks/"))}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with only the wheel installed; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--quiet", str(wheel)], check=True, timeout=300)
    return venv / "bin"


def test_the_installed_wheel_runs_demo_and_serve_outside_the_checkout(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKBENCH_DB", "WORKBENCH_LLM_BASE_URL")}
    where = subprocess.run([str(installed / "python"), "-c", "import workbench; print(workbench.__file__)"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout
    assert str(installed.parent) in where and str(ROOT) not in where, where

    demo = subprocess.run([str(installed / "workbench"), "demo", "--participants", "8", "--invites", "1"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "8 participants" in demo.stdout and (elsewhere / "data" / "workbench.duckdb").exists()

    port = free_port()
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: nobody reads the server's chatter meanwhile
    server = subprocess.Popen([str(installed / "workbench"), "serve", "--port", str(port)], cwd=elsewhere, env=env,
                              stdout=log, stderr=log, start_new_session=True)
    try:
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log: {(tmp_path / 'serve.log').read_text()[-2000:]}") from None
        from browser import WAIT_MS, chromium, chromium_missing_reason

        if chromium_missing_reason():
            return  # the server started from the wheel; the page itself needs a browser to see
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"http://127.0.0.1:{port}/?join=demo")
            page.get_by_text("Step 1 of 10: Welcome").first.wait_for()
            page.close()
    finally:
        log.close()
        os.killpg(server.pid, signal.SIGTERM)  # `workbench serve` and the Streamlit process it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
