"""A reproducible runbook for pull-request CI/CD.

Stage notebooks import `RunConfig` and `stages`; the CLI is `python -m runbook`.
"""

from runbook.core.config import STAGES, TARGETS, RunConfig
from runbook.core.errors import CommandError, ConfigError, RunbookError

__all__ = ["STAGES", "TARGETS", "CommandError", "ConfigError", "RunConfig", "RunbookError"]
