import sys

import pytest

from runbook.core import commands
from runbook.core.errors import CommandError


def test_captures_output_and_adds_to_the_environment():
    result = commands.run([sys.executable, "-c", "import os; print(os.environ['RB_X'], os.environ['PATH'] != '')"],
                          timeout=30, env={"RB_X": "hello"})
    assert result.stdout.split() == ["hello", "True"]


def test_failure_names_the_command_and_shows_stderr():
    with pytest.raises(CommandError) as caught:
        commands.run([sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"], timeout=30)
    assert caught.value.returncode == 3
    assert "exit code 3" in str(caught.value) and "boom" in str(caught.value)
    assert caught.value.argv[0] == sys.executable


def test_timeout_is_an_error():
    with pytest.raises(CommandError, match="timed out after 0.5s"):
        commands.run([sys.executable, "-c", "import time; time.sleep(10)"], timeout=0.5)


def test_missing_binary():
    with pytest.raises(CommandError, match="not found on PATH"):
        commands.run(["definitely-not-a-binary-xyz"], timeout=5)


def test_unchecked_returns_the_code():
    assert commands.run([sys.executable, "-c", "raise SystemExit(4)"], timeout=30, check=False).returncode == 4
