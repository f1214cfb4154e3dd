"""What a tenant may make the service name: the one place the API decides which chips, spaces,
proxies, plug-ins, data folders and Ray clusters a request may use (docs/service.md, *Threat model*).

A request names things; it never gives a path the service would open, parse or echo, except a data
folder under a root the operator declared (``nas serve --data-root``; with auth, the tenant's own
folder ``ROOT/TENANT``), resolved (symlinks, ``..``) before it is checked. Plug-ins are exact
``module:object`` entries the operator lists, and cluster addresses are the operator's. Files and
addresses stay open to the operator's own tools (``nas run``, the Python API), which trust their
caller. Every refusal names the field and never says what exists on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hwmodels import accelerator_names
from nas.spec import FieldError, JobSpec, PluginRef, SpecError
from search_spaces import space_names

# the datasets a name selects (the scenes are generated on the service's disk); other data is a
# folder under a data root
DATASETS = ("fashion-mnist", "fashion-mnist-scenes")


@dataclass(frozen=True)
class Policy:
    """The operator's grants: exact plug-in entries, Ray addresses, and data roots."""

    plugins: tuple[str, ...] = ()  # exact 'module:object' entries (`nas serve --allow-plugin`)
    ray_addresses: tuple[str, ...] = ()  # clusters a spec may join (`nas serve --allow-ray-address`)
    data_roots: tuple[Path, ...] = ()  # folders a spec's data may come from (`nas serve --data-root`)

    def __post_init__(self) -> None:
        for entry in self.plugins:  # the form a spec must use: exact module:object, no chains
            try:
                PluginRef(plugin=entry)
            except ValidationError:
                raise ValueError(f"--allow-plugin {entry!r}: name one plug-in as package.module:object") from None
        object.__setattr__(self, "data_roots", tuple(Path(r).resolve() for r in self.data_roots))

    def check_spec(self, spec: JobSpec, tenant: str | None) -> JobSpec:
        """The spec if everything it names is allowed here (data folders resolved); else
        ``SpecError`` with one entry per refused field."""
        errors: list[tuple[str, str]] = []
        for name in ("space", "evaluator"):
            value = getattr(spec, name)
            if isinstance(value, PluginRef) and value.plugin not in self.plugins:
                allowed = f"this service allows {', '.join(self.plugins)}" if self.plugins else "plug-ins are off here"
                errors.append((f"{name}.plugin", f"not an allowed plug-in ({allowed}); its operator lists exact "
                               "entries with `nas serve --allow-plugin MODULE:OBJECT`"))  # fmt: skip
        if isinstance(spec.space, str):
            errors += _registered("space", spec.space, space_names(), "GET /spaces; or inline one")
        field = "accelerator" if isinstance(spec.accelerator, str) else "accelerator.base"
        errors += _registered(field, spec.accelerator_name, accelerator_names(), "GET /accelerators")
        if spec.workers.address is not None and spec.workers.address not in self.ray_addresses:
            errors.append(("workers.address", "the service's jobs run on its operator's cluster; omit it "
                           "(the operator allows addresses with `nas serve --allow-ray-address`)"))  # fmt: skip
        evaluator = spec.evaluator
        if not isinstance(evaluator, PluginRef):
            from nas.proxies import proxy_names  # torch: the API process has it loaded already

            errors += _registered("evaluator.proxy", evaluator.proxy, proxy_names(), "the shipped proxies")
            updates = {}
            if evaluator.data not in DATASETS:
                updates["data"] = self._data_folder("evaluator.data", evaluator.data, tenant, errors)
            if evaluator.data_dir is not None:
                updates["data_dir"] = self._data_folder("evaluator.data_dir", evaluator.data_dir, tenant, errors)
            if updates and not errors:
                spec = spec.model_copy(update={"evaluator": evaluator.model_copy(update=updates)})
        if errors:
            raise SpecError(errors=errors)
        return spec

    def _data_folder(self, field: str, value: str, tenant: str | None, errors: list[tuple[str, str]]) -> str:
        """``value`` resolved under the caller's data root (relative paths start there), or an error
        that says nothing of what the server holds."""
        for root in self.data_roots:
            base = (root / tenant).resolve() if tenant is not None else root
            if tenant is not None and base.parent != root:  # a tenant name is one folder, never a path
                continue
            try:
                resolved = (base / value).resolve()  # an absolute value replaces base; symlinks and .. resolved
            except (OSError, ValueError):  # a NUL byte, a symlink loop
                continue
            if resolved.is_relative_to(base):
                return str(resolved)
        if not self.data_roots:
            fix = f"name one of {', '.join(DATASETS)}; this service reads no folders a request names"
        else:
            fix = "give a folder under your data root (a relative path starts there"
            fix += ": the root's folder named for your tenant)" if tenant is not None else ")"
        errors.append((field, f"{fix}; the operator declares data roots with `nas serve --data-root DIR`"))
        return value


def check_accelerators(names: Sequence[str], field: str, where: str = "body") -> None:
    """Refuse any name that is not a shipped accelerator, before anything is loaded."""
    errors = [e for name in names for e in _registered(field, name, accelerator_names(), "GET /accelerators")]
    if errors:
        raise FieldError(errors=errors[:1], where=where)


def _registered(field: str, value: str, names: Sequence[str], listed: str) -> list[tuple[str, str]]:
    if value in names:
        return []
    shown = value if len(value) <= 64 and value.isprintable() else value[:64].encode("unicode_escape").decode() + "…"
    return [(field, f"{shown!r} is not one of {', '.join(names)} ({listed}); names only, never paths")]
