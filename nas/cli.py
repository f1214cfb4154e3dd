"""The `nas` command."""

from __future__ import annotations

import argparse
import signal
import sys

from pydantic import ValidationError

from hwmodels import AcceleratorError
from nas import _hw_cli, _jobs_cli, _proxy_cli, _service_cli, _space_cli
from nas.client import ClientError, ExportFailedError
from nas.store import StoreError
from search_spaces import SpaceError, UnknownNameError, describe_validation_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Hardware-aware NAS for IMC accelerators")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{run,resume,cancel,jobs,pareto,show,export,serve,token,space,hw,proxy}",
    )
    _jobs_cli.add_parsers(sub)
    _service_cli.add_parsers(sub)
    _space_cli.add_parser(sub)
    _hw_cli.add_parser(sub)
    _proxy_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `nas ... | head` ends quietly
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "server", None) and args.func is not _service_cli.cmd_export:
            return _service_cli.remote(args)
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


if __name__ == "__main__":
    sys.exit(main())
