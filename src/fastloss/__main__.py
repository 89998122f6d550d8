"""Command line: ``python -m fastloss {bench,eval,config}``.

``python -m fastloss bench [--quick] [--threads N] [--json PATH] [--dtype ...] [--losses ...]
[--groups losses torch]``
    runs the benchmark suite (:mod:`fastloss.bench`) and prints its tables.
``python -m fastloss eval LOSS INPUT TARGET [--weight FILE] [--param NAME=VALUE ...]``
    evaluates a loss over arrays in files (.npy, .npz, Parquet, Arrow), streamed in
    batches with bounded memory (fastloss._cli_eval); ``--json`` prints the result as JSON.
``python -m fastloss config``
    prints :func:`fastloss.show_config`: the build, SIMD level and OpenMP settings.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _names(choices: Sequence[str], resolve=None):
    """argparse type for a comma-separated list of names out of ``choices`` (``resolve``
    maps other spellings to one of them, or to None)."""
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if resolve is not None:
            names = [resolve(n) or n for n in names]
        bad = [n for n in names if n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, bad))}; choose from {', '.join(choices)}")
        return names
    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import _cli_eval
    from .bench import cases, peers

    losses = cases.loss_names()

    parser = argparse.ArgumentParser(
        prog="python -m fastloss",
        description="fastloss command line: run the benchmark suite, evaluate a loss over "
                    "files, or show the build.")
    sub = parser.add_subparsers(dest="command", metavar="{bench,eval,config}")

    bench = sub.add_parser(
        "bench", help="run the benchmark suite",
        description="Time every loss against PyTorch, sklearn._loss, NumPy and memory-"
                    "bandwidth floors (medians of interleaved repeats, same thread count) "
                    "and print a table.  The tables need rich; PyTorch, scikit-learn and "
                    "threadpoolctl are used when installed (pip install "
                    "\"fastloss[bench]\").")
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="preset", action="store_const", const="quick",
                      default="full", help="smaller arrays, fewer repeats (about a minute)")
    size.add_argument("--smoke", dest="preset", action="store_const", const="smoke",
                      help="tiny arrays, 3 repeats: checks that the suite runs (seconds)")
    bench.add_argument("--threads", type=_positive_int, metavar="N",
                       help="threads for fastloss and every peer (default: all cores)")
    bench.add_argument("--json", metavar="PATH", help="also write all results as JSON here")
    bench.add_argument("--dtype", nargs="+", type=_names(cases.DTYPES), metavar="DTYPE",
                       help=f"dtypes to run (default: all of {', '.join(cases.DTYPES)})")
    bench.add_argument("--losses", nargs="+", type=_names(losses, cases.resolve),
                       metavar="LOSS",
                       help=f"losses of the table to run, by name (or class name) "
                            f"(default: all of {', '.join(losses)})")
    bench.add_argument("--groups", nargs="+", type=_names(tuple(cases.GROUPS)),
                       metavar="GROUP",
                       help=f"case groups to run: {', '.join(cases.GROUPS)} (default: "
                            f"{', '.join(cases.DEFAULT_GROUPS)}; torch: fastloss.torch's "
                            f"modules against torch.nn's, training use)")
    bench.add_argument("--peers", nargs="+", type=_names(peers.PEERS), metavar="PEER",
                       help=f"peers to compare with when installed (default: "
                            f"{', '.join(peers.PEERS)})")
    bench.add_argument("--no-scaling", dest="scaling", action="store_false",
                       help="skip the thread-scaling section")
    bench.add_argument("--scaling-threads", nargs="+", type=_positive_int, metavar="N",
                       help="thread counts of the thread-scaling section (default: 1, 2, "
                            "... every core); speed-ups are over the smallest")
    bench.add_argument("--scaling-only", dest="cases", action="store_false",
                       help="run the thread-scaling section only, not the table of cases")
    bench.add_argument("--no-progress", dest="progress", action="store_false",
                       help="no progress on stderr (a bar on a terminal, else a line per case)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the random inputs")

    _cli_eval.add_parser(sub, _positive_int)

    sub.add_parser("config", help="show the build configuration (fastloss.show_config())",
                   description="Print fastloss.show_config(): compiler, flags, SIMD level, "
                               "OpenMP and thread defaults.")
    return parser


def _flatten(lists: Sequence[Sequence[str]] | None, default: Sequence[str]) -> tuple[str, ...]:
    """Join repeated / comma-separated name lists, dropping duplicates, keeping order."""
    if not lists:
        return tuple(default)
    return tuple(dict.fromkeys(name for names in lists for name in names))


def _bench(args: argparse.Namespace) -> int:
    from .bench import cases, peers, report, suite

    config = suite.BenchConfig(preset=args.preset, threads=args.threads,
                               dtypes=_flatten(args.dtype, cases.DTYPES),
                               losses=_flatten(args.losses, cases.loss_names()),
                               peers=_flatten(args.peers, peers.PEERS),
                               groups=_flatten(args.groups, cases.DEFAULT_GROUPS),
                               scaling=args.scaling, scaling_threads=args.scaling_threads,
                               cases=args.cases, seed=args.seed)
    try:
        results = suite.run(config, out=sys.stdout,
                            progress=sys.stderr if args.progress else None)
    except report.MissingDependency as exc:
        print(f"python -m fastloss bench: {exc}", file=sys.stderr)
        return 1
    if args.json:
        path = suite.write_json(results, args.json)
        print(f"results written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fastloss``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    if args.command == "eval":
        from . import _cli_eval
        return _cli_eval.run(args)
    if args.command == "config":
        from . import show_config
        show_config()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
