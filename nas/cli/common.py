"""What the `nas` command groups share: the database and service options, opening the store (a
read command never creates a database), the service's client, `--where` bounds, and loading a
network by name. Heavy modules (the store, torch) load inside the functions."""

from __future__ import annotations

import argparse
from pathlib import Path

from search_spaces import ArchConfig

DB_HELP = "database URL (default: $NAS_DB_URL, else sqlite:///nas.db in the working directory)"
WHERE_HELP = (
    "bounds, e.g. 'latency_ms<2' or 'latency_ms<2,energy_mj<=3' (ops < <= > >= != and =; "
    "= only on counts such as params or trial_number: a float metric takes <= and >=)"
)


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--db`` for the local store, ``--server``/``--token`` to act through a service instead."""
    p.add_argument("--db", help=DB_HELP)
    add_server_options(p)


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="act through a running service (`nas serve`) instead of --db")
    p.add_argument("--token", help="the service's API token (default: $NAS_TOKEN)")


def open_store(args: argparse.Namespace, *, create: bool = False):
    """The store of ``--db`` (else $NAS_DB_URL, else ./nas.db). Commands that only read pass
    ``create=False``: a SQLite file that is not there is refused by name, not created empty."""
    from nas.store import Store, default_url

    url = args.db or default_url()
    if not create:
        missing = missing_sqlite_file(url)
        if missing is not None:
            raise FileNotFoundError(
                f"database {url}: no such file {missing}; give the database of your jobs with --db URL "
                f"(or $NAS_DB_URL), or create one by submitting a job: `nas run SPEC.yaml --db {url}`"
            )
    return Store(url)


def missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, where it does not exist (None: there, in memory, or not SQLite)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path.resolve()


def client(args: argparse.Namespace):
    from nas.client import Client

    return Client(args.server, token=args.token)


def where_bounds(where: str | list[str] | None):
    """``--where`` as the store's bounds (``nas.store.parse_bounds``: ``=`` only on counts), checked
    before a service is asked too."""
    from nas.store import parse_bounds

    return parse_bounds(where)


def load_arch(ref: str) -> ArchConfig:
    """A preset name, or the path of an ArchConfig JSON file."""
    import search_spaces

    path = Path(ref)
    if ref.endswith(".json") or path.is_file():
        try:
            return ArchConfig.from_json(path.read_text())
        except OSError as err:
            raise ValueError(f"{ref}: cannot read the architecture file: {err}") from err
    return search_spaces.get_preset(ref)


def external_model(name: str, in_chans: int = 3, num_classes: int | None = None):
    """A timm model (or ``torchvision:NAME``, or a torchvision name timm lacks), initialised."""
    import timm
    import torchvision

    extra = {} if num_classes is None else {"num_classes": num_classes}
    if not name.startswith("torchvision:") and timm.is_model(name):
        return timm.create_model(name, pretrained=False, in_chans=in_chans, **extra)
    tv_name = name.removeprefix("torchvision:")
    if tv_name in torchvision.models.list_models():
        return torchvision.models.get_model(tv_name, weights=None, **extra)
    raise ValueError(f"--model: {name!r} is neither a timm model nor a torchvision model (see timm.list_models())")
