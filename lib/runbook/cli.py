"""The command line: `python -m runbook run ...`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from runbook.core.config import INGRESS_MODES, LOAD_GENERATORS, STAGES, TARGETS, RunConfig
from runbook.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ConfigError, RunbookError, ToolError, exit_code

DESCRIPTION = """\
Stand up a target, deploy the echo services, verify host routing, load-test
them with Locust, chart the results and publish a summary to the pull request.
Each stage is a notebook in notebooks/, executed by papermill into the run folder.

exit codes: 0 the run passed; 1 a stage failed or the load test's verdict is
failed; 2 bad input (nothing was started or written)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors are bad input too
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m runbook", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run the pipeline (or some of its stages)", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = RunConfig()
    target = run.add_argument_group("target")
    target.add_argument("--target", default=defaults.target, metavar="{" + ",".join(TARGETS) + "}",
                        help="where the services run: kind (a new 2-node KinD cluster), kubeconfig (the current "
                        "cluster), local (processes on 127.0.0.1, a stand-in without Docker), or auto: kind where "
                        "Docker and kind are usable, else local (default: %(default)s)")
    target.add_argument("--keep-cluster", action="store_true",
                        help="leave the target (cluster or local processes) up after the run; a later "
                        "'--stages teardown' with the same --output-dir takes it down")
    target.add_argument("--no-metrics-server", action="store_true",
                        help="kind: do not install metrics-server (the echo chart's autoscaler then never acts)")
    target.add_argument("--cluster-name", default=defaults.cluster_name, help="kind cluster name (default: %(default)s)")
    target.add_argument("--context", default=defaults.context, help="kubeconfig context for --target kubeconfig (default: current)")
    target.add_argument("--namespace", default=defaults.namespace, help="namespace for --target kubeconfig (default: one per run, removed at teardown)")
    target.add_argument("--ingress-mode", default=defaults.ingress_mode, metavar="{" + ",".join(INGRESS_MODES) + "}",
                        help="how traffic reaches Traefik on kind/kubeconfig: nodeport (the kind port mapping) or "
                        "port-forward (kubectl port-forward svc/traefik) (default: %(default)s)")
    target.add_argument("--ingress-port", default=defaults.ingress_port, help="ingress port on 127.0.0.1 (default: %(default)s)")
    target.add_argument("--services", default=",".join(defaults.services),
                        help="services to deploy and test, folders of k8s/deployment/ (default: %(default)s)")
    load = run.add_argument_group("load profile")
    load.add_argument("--users", default=defaults.users, help="peak concurrent users (default: %(default)s)")
    load.add_argument("--spawn-rate", default=defaults.spawn_rate, help="users started per second (default: %(default)s)")
    load.add_argument("--run-time", default=f"{defaults.run_time}s", help="load test duration, e.g. 30s, 2m, 1m30s (default: %(default)s)")
    load.add_argument("--wait-min", default=defaults.wait_min, help="seconds a user waits after a response, at least (default: %(default)s)")
    load.add_argument("--wait-max", default=defaults.wait_max, help="... and at most (default: %(default)s)")
    load.add_argument("--request-timeout", default=defaults.request_timeout, help="seconds before a request counts as failed (default: %(default)s)")
    load.add_argument("--processes", default=defaults.processes, metavar="N",
                      help="Locust processes on this machine: 1, or N workers under a master (Locust's own "
                      "--processes), -1 for one per core (default: %(default)s)")
    load.add_argument("--load-generator", default=defaults.load_generator, metavar="{" + ",".join(LOAD_GENERATORS) + "}",
                      help="where Locust runs: local (this machine) or cluster (a master and --workers pods in the "
                      "run's namespace, kind and kubeconfig targets) (default: %(default)s)")
    load.add_argument("--workers", default=defaults.workers, metavar="N",
                      help="--load-generator cluster: Locust worker pods (default: %(default)s)")
    load.add_argument("--preflight-timeout", default=defaults.preflight_timeout,
                      help="seconds the load test waits for every service to answer before it starts (default: %(default)s)")
    verdict = run.add_argument_group("verdict")
    verdict.add_argument("--slo", default=defaults.slo, help="service-level objectives to check (default: %(default)s)")
    verdict.add_argument("--baseline", default=defaults.baseline, metavar="REF",
                         help="a git commit (in CI the pull request's base, HEAD^1) whose k8s/ is deployed beside the "
                         "change and compared with it under the same load, the requests sent to both sides in random pairs")
    verdict.add_argument("--require-baseline", action="store_true",
                         help="fail the run when the baseline cannot be compared (no k8s/ there, or it failed to deploy)")
    verdict.add_argument("--inject-delay", default=defaults.inject_delay, metavar="SERVICE=MS",
                         help="local target only: the candidate side of SERVICE answers MS ms later, to see what size "
                         "of regression the comparison catches on this machine")
    pipeline = run.add_argument_group("pipeline")
    pipeline.add_argument("--stages", default=",".join(STAGES),
                          help="comma-separated subset in pipeline order; teardown joins any run that "
                          f"provisions (default: {','.join(STAGES)})")
    pipeline.add_argument("--output-dir", metavar="DIR", help="the run folder itself (default: outputs/<run-id>)")
    pipeline.add_argument("--pr", default=defaults.pr, help="pull request number to publish to (default: from the GitHub event)")
    pipeline.add_argument("--require-publish", action="store_true", help="fail the run when nothing could be published")
    pipeline.add_argument("--assets-branch", default=defaults.assets_branch,
                          help="branch the chart images are committed to for the comment (default: %(default)s)")
    pipeline.add_argument("-v", "--verbose", action="store_true", help="stream each notebook's output to the log")

    again = commands.add_parser(
        "compare", help="recompute a run's comparison with its baseline from its request log",
        description="Reads RUN_DIR/load_test (requests.csv, profile.json) and prints the comparison's one-line "
        "answer and its table, computed exactly as the report stage does (a fixed seed: the same request log "
        "always gives the same verdicts). Exit 1 when a regression is beyond its limit.")
    again.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made with --baseline")
    again.add_argument("--slo", default=None, help="the SLO file whose regression limits apply (default: the run's own)")

    tools = commands.add_parser("tools", help="check or install kind, helm and kubectl")
    tool_commands = tools.add_subparsers(dest="tools_command", required=True, parser_class=_Parser)
    install = tool_commands.add_parser(
        "install", help="download the pinned kind, helm and kubectl releases, verify their SHA-256, install them",
        description="Downloads the pinned releases (see runbook/targets/tools.py), checks each file's SHA-256 before "
        "unpacking, and installs the binaries into DEST, which the runbook searches after PATH.")
    install.add_argument("--dest", default=None, help="folder for the binaries (default: ~/.cache/runbook/bin)")
    install.add_argument("--only", default="kind,helm,kubectl", help="comma-separated subset (default: %(default)s)")
    install.add_argument("--mirror", default=None, help="fetch the same file names from this base URL instead")
    check = tool_commands.add_parser("check", help="find the tools a target needs and check their versions")
    check.add_argument("--target", default="kind", choices=("kind", "kubeconfig"))
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    from runbook.pipeline import default_run_dir

    run_dir = Path(args.output_dir).resolve() if args.output_dir else default_run_dir()
    return RunConfig.from_parameters(
        target=args.target, users=args.users, spawn_rate=args.spawn_rate, run_time=args.run_time,
        wait_min=args.wait_min, wait_max=args.wait_max, request_timeout=args.request_timeout,
        preflight_timeout=args.preflight_timeout,
        ingress_port=args.ingress_port, ingress_mode=args.ingress_mode, services=args.services,
        stages=args.stages, keep_cluster=args.keep_cluster, metrics_server=not args.no_metrics_server,
        cluster_name=args.cluster_name,
        context=args.context, namespace=args.namespace, pr=args.pr, require_publish=args.require_publish,
        assets_branch=args.assets_branch, slo=args.slo, baseline=args.baseline,
        require_baseline=args.require_baseline, inject_delay=args.inject_delay,
        processes=args.processes, load_generator=args.load_generator, workers=args.workers,
        run_dir=str(run_dir),
    )


def main(argv: list[str] | None = None) -> int:
    # nbformat's schema validation pulls in jsonschema's optional IRI format checker, whose
    # grammar takes ~0.8 s to build at import; notebooks use no IRI formats, so the CLI skips it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "run":
        return run_command(args)
    if args.command == "tools":
        return tools_command(args)
    if args.command == "compare":
        return compare_command(args)
    return EXIT_BAD_INPUT


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def failed(exc: BaseException, bad_input: tuple[type[BaseException], ...] = (ConfigError,), hint: str = "") -> int:
    """Say what went wrong in one line on stderr; the exit code comes from errors.exit_code()."""
    code = exit_code(exc, bad_input)
    print(f"error: {exc}" if code != EXIT_INTERRUPTED else hint, file=sys.stderr)
    return code


def tools_command(args: argparse.Namespace) -> int:
    from runbook.targets import tools

    try:
        if args.tools_command == "check":
            box = tools.check_tools(args.target)
            for tool in box.tools.values():
                print(f"{tool.name} {tool.version_text} at {tool.path}")
            return EXIT_OK
        names = tuple(name.strip() for name in args.only.split(",") if name.strip())
        for name in names:
            if name not in tools.RELEASES:
                raise ConfigError("only", name, f"not one of {', '.join(tools.RELEASES)}")
        dest = Path(args.dest).resolve() if args.dest else tools.default_cache()
        installed = tools.install(dest=dest, names=names, mirror=args.mirror)
    except RunbookError as exc:
        return failed(exc)
    for name, path in installed.items():
        print(f"installed {name} {tools.RELEASES[name].version} at {path} (SHA-256 verified)")
    print(f"the runbook finds them there; to use them yourself: export PATH=\"{dest}:$PATH\"")
    return EXIT_OK


def compare_command(args: argparse.Namespace) -> int:
    from runbook.report.build import recompare
    from runbook.report.summary import render_comparison

    try:
        comparison = recompare(Path(args.run_dir).resolve(), Path(args.slo).resolve() if args.slo else None)
    except RunbookError as exc:
        return failed(exc)
    print(comparison["headline"])
    print()
    print(render_comparison(comparison))
    return EXIT_FAILED if comparison["failed"] else EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    from runbook.targets.baseline import resolve_ref
    from runbook.pipeline import Pipeline
    from runbook.core.rundir import RunFolder
    from runbook.core.services import load_services
    from runbook.analysis.slo import load_slo
    from runbook.targets import make_target, resolve_target

    # Everything here checks input before anything starts: any error is bad input, and nothing is written.
    try:
        config = config_from_args(args)
        load_services(config.services)  # a missing or broken values file is bad input too
        load_slo(config.slo_path)
        if config.baseline:
            resolve_ref(config.baseline)
        target, why = resolve_target(config)
        print(f"target: {target} ({why})", flush=True)
        config = config.replace(target=target)
        # Builds the target without starting anything: a cluster target checks its tools here.
        make_target(config, RunFolder(config.run_path))
    except (ConfigError, ToolError) as exc:
        return failed(exc, bad_input=(ConfigError, ToolError))
    # A cancelled CI job gets SIGTERM: handle it like Ctrl-C, so that teardown still runs.
    signal.signal(signal.SIGTERM, _interrupt)

    def announce(line: str) -> None:
        print(line, flush=True)

    try:
        return Pipeline(config, target_why=why, requested_target=args.target, log_output=args.verbose, announce=announce).run()
    except (RunbookError, KeyboardInterrupt) as exc:
        return failed(exc, hint="interrupted again: stopped without teardown; take the target down with "
                      f"`python -m runbook run --stages teardown --output-dir {config.run_path}`")
