"""The shared core: the run's configuration, errors, commands, waits, the run folder, progress lines, the services under test.

Everything else may import it; it imports nothing of the runbook above it."""
