"""The `nas` command: one module per command group, each command's local (``--db``) and remote
(``--server``) handlers side by side in it.

    jobs      nas run | resume | train | cancel | jobs       search jobs
    results   nas pareto | show | export                     a job's results
    service   nas serve | token | export-run (internal)      the REST API and its tokens
    space     nas space list | sample | show                 search spaces and architectures
    hw        nas hw estimate | list | compare | sweep       hardware costs
    proxy     nas proxy list | score                         accuracy proxies
    data      nas data scenes | check                        dense data: generated scenes, a data set's check

``common`` holds what they share (the database and service options, the store, network loading),
``format`` the tables and numbers, ``progress`` the bars of `nas run`. Entry points: the ``nas``
console script and ``python -m nas`` both call ``main``. Nothing here imports torch or Ray at
start: `nas cancel` and `nas jobs` answer while a job loads the machine.
"""

from __future__ import annotations

import argparse
import signal
import sys

from pydantic import ValidationError

from hwmodels import AcceleratorError
from nas.cli import data, hw, jobs, proxy, results, service, space
from nas.client import ClientError, ExportFailedError
from nas.store import StoreError
from search_spaces import SpaceError, UnknownNameError, describe_validation_error

GROUPS = (jobs, results, service, space, hw, proxy, data)
INTERNAL = ("export-run",)  # run by the service's supervisor, not listed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Hardware-aware NAS for IMC accelerators")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    sub.metavar = "{" + ",".join(name for name in sub.choices if name not in INTERNAL) + "}"
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `nas ... | head` ends quietly
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as err:
        return _fail(f"invalid {err.title}:\n  " + describe_validation_error(err, sep="\n  "))
    except (StoreError, ConnectionError, FileExistsError) as err:
        return _fail(str(err))
    except (
        UnknownNameError,
        SpaceError,
        AcceleratorError,
        FileNotFoundError,
        ValueError,
        ClientError,
        ExportFailedError,
        TimeoutError,
    ) as err:  # data: DataNotFoundError
        return _fail(str(err))


def _fail(message: str) -> int:
    print(f"nas: error: {message}", file=sys.stderr)
    return 2


__all__ = ["build_parser", "main"]
