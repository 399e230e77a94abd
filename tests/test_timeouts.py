"""No test can hang the run: pytest-timeout is configured, and it fails a hung test in seconds."""

import subprocess
import sys
import textwrap


def test_the_suite_has_a_global_timeout(request):
    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout is installed (the [test] extra)"
    assert int(request.config.getini("timeout")) == 900


def test_a_hung_test_fails_fast(tmp_path):
    (tmp_path / "test_hang.py").write_text(
        textwrap.dedent(
            """
            import threading

            def test_hangs():
                threading.Event().wait()  # waits forever, like a process stuck in a destructor
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout[-2000:]
    assert "Timeout" in run.stdout and "1 failed" in run.stdout
