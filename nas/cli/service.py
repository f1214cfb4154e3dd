"""`nas serve` (the REST API, the job runner and the dashboard), `nas token` (its API tokens) and
`nas export-run` (internal: the service's supervisor runs each queued export so)."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import sys
from pathlib import Path

from nas.cli.common import DB_HELP, open_store
from nas.cli.format import table
from nas.limits import Limits, RequestLimits

AUTH_ENV = "NAS_AUTH"  # 1: `nas serve` requires tokens


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the REST API, the job runner and the dashboard")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--auth", action="store_true", help=f"require tokens (also ${AUTH_ENV}=1); see `nas token create`")
    p.add_argument("--data-dir", default="nas-service", help="exports and job logs (default ./nas-service)")
    p.add_argument("--max-jobs", type=int, default=2, help="jobs run at once (default 2); the others wait queued")
    p.add_argument(
        "--allow-plugin", action="append", default=[], metavar="MODULE:OBJECT",
        help="let submitted specs name this plug-in, exactly (code a job imports); repeat for more",
    )  # fmt: skip
    p.add_argument(
        "--allow-ray-address", action="append", default=[], metavar="ADDRESS",
        help="let submitted specs join this Ray cluster (workers.address); by default jobs use the service's",
    )  # fmt: skip
    p.add_argument(
        "--data-root", action="append", default=[], metavar="DIR",
        help="let submitted specs read data folders under DIR (with --auth: under DIR/TENANT); default: none",
    )  # fmt: skip
    p.add_argument("--insecure", action="store_true", help="allow binding beyond this machine with auth off")
    limits = p.add_argument_group("limits on what one job may ask for (GET /limits lists them)")
    for f in dataclasses.fields(Limits):
        if f.name != "raise_hint":
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            kind = float if f.name.endswith("_s") else int
            limits.add_argument(f"--{f.name.replace('_', '-')}", type=kind, metavar="N", help=f"default {default}")
    requests = p.add_argument_group("limits on what one request may ask of the service (GET /limits lists them)")
    for f in dataclasses.fields(RequestLimits):
        requests.add_argument(f"--{f.name.replace('_', '-')}", type=int, metavar="N", help=f"default {f.default}")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="API tokens: create (printed once), list, revoke")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("ref", nargs="?", help="revoke: the token's id or printed prefix")
    p.add_argument("--tenant", help="create: the tenant the token acts for; list: only its tokens")
    p.add_argument("--db", help=DB_HELP)
    p.set_defaults(func=cmd_token)

    # internal (no help: not listed): the service's supervisor runs each queued export so
    p = sub.add_parser("export-run", description="run queued export N of the service (its supervisor starts this)")
    p.add_argument("export", type=int)
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--out", required=True, help="the service's export folder, for the zip")
    p.set_defaults(func=cmd_export_run)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nas.service import OPERATOR_HINT, Policy, Settings, create_app

    auth = args.auth or os.environ.get(AUTH_ENV, "").lower() in ("1", "true", "yes", "on")
    if not auth and not _loopback(args.host) and not args.insecure:
        raise ValueError(
            f"--host {args.host}: binding beyond this machine with auth off lets anyone run and read jobs; "
            "add --auth (tokens from `nas token create --tenant NAME`), or --insecure if you mean it"
        )
    store = open_store(args, create=True)  # a new service may start its database
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(Limits) if getattr(args, f.name, None) is not None
    }
    requests = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(RequestLimits) if getattr(args, f.name) is not None
    }
    settings = Settings(
        limits=Limits(raise_hint=OPERATOR_HINT, **given),
        policy=Policy(tuple(args.allow_plugin), tuple(args.allow_ray_address), tuple(Path(r) for r in args.data_root)),
        auth=auth, data_dir=Path(args.data_dir), max_jobs=args.max_jobs, **requests,
    )  # fmt: skip
    app = create_app(store, settings=settings)
    where = f"http://{args.host}:{args.port}"
    print(f"nas serve: {where} (dashboard {where}/ui/, API docs {where}/docs) on {store.safe_url}", flush=True)
    if auth:
        print("auth on: every route but /healthz needs `Authorization: Bearer <token>`", flush=True)
    else:
        print(f"auth OFF: anyone who reaches {args.host} can submit and read jobs (--auth turns it on)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_token(args: argparse.Namespace) -> int:
    if args.action == "create" and not args.tenant:
        raise ValueError("token create: --tenant NAME is required")
    store = open_store(args, create=args.action == "create")
    if args.action == "create":
        token, record = store.create_token(args.tenant)
        print(f"token {record.id} for tenant {record.tenant} (shown once; only its hash is kept):", file=sys.stderr)
        print(token)
    elif args.action == "list":
        rows = [
            (t.id, t.tenant, t.prefix + "…", t.created_at.strftime("%Y-%m-%d %H:%M"), "revoked" if t.revoked_at else "")
            for t in store.tokens(args.tenant)
        ]
        print(table(["id", "tenant", "token", "created", ""], rows) if rows else "no tokens")
    else:
        if not args.ref:
            raise ValueError("token revoke: give the token's id or prefix (`nas token list`)")
        record = store.revoke_token(args.ref)
        print(f"token {record.id} of {record.tenant} revoked")
    return 0


def cmd_export_run(args: argparse.Namespace) -> int:
    import signal
    from pathlib import Path

    from nas._export_run import run_export

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stop raises: the work folder is removed
    record = run_export(open_store(args), args.export, Path(args.out))
    print(f"export {record.id}: {record.status}{': ' + record.error if record.error else ''}")
    return 0 if record.status == "complete" else 1
