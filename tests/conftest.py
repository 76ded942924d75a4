"""Shared pytest fixtures: the shared-data helper and Triton's CPU interpreter."""

import os

# No GPU on CI: Triton kernels run in the interpreter. Must be set before any
# kernel module is imported (triton.jit reads it at decoration time).
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from chansim.data import shared_data_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared_data():
    """The shared data directory; skips the test when it is absent (e.g. on a user's machine)."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared data directory not found (set CHANSIM_SHARED_DATA or place shared/data beside the repo)")
    return d


@pytest.fixture
def cli_run(capsys):
    """The command line in this process (fast: imports are paid once): status, stdout, stderr."""
    from chansim import cli

    def call(*argv):
        capsys.readouterr()
        try:
            status = cli.main([str(a) for a in argv])
        except SystemExit as e:            # argparse's usage errors exit(2) while parsing
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return call
