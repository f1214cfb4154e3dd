"""The service's exports, run apart from its API: ``nas export-run N`` (started by the service's
supervisor, in a session of its own) claims queued export N, beats from a thread while it builds,
trains and traces the network, and records the export ``complete`` (its zip and model card) or
``failed`` (what failed; the API redacts its paths). The API process only queues
the row, so no request makes it build, train or trace anything.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from nas.export import export_stored, zip_folder
from nas.liveness import Heartbeat, owner_id
from nas.spec import FieldError
from nas.store import CandidateRecord, ExportRecord, JobRecord, Store


def run_export(store: Store, export_id: int, export_dir: Path) -> ExportRecord:
    """Run queued export ``export_id`` in this process and record its end; its zip goes to
    ``export_dir``. Raises ``StoreError`` if another process claimed it first. Interrupted
    (SIGTERM, Ctrl-C), it records nothing: its supervisor does."""
    owner = owner_id()
    export = store.claim_export(export_id, owner)
    with Heartbeat(lambda: store.export_heartbeat(export_id, owner), f"nas-export-{export_id}"):
        try:
            job = store.get_job(export.job_id)
            candidate = store.candidate(job.id, export.candidate_id)
            return export_archive(store, export, job, candidate, export_dir)
        except Exception as err:  # recorded for the tenant; the traceback goes to this process's log
            traceback.print_exc()
            return store.finish_export(export_id, "failed", error=failure_text(err))


def export_archive(
    store: Store, export: ExportRecord, job: JobRecord, candidate: CandidateRecord, export_dir: Path
) -> ExportRecord:
    """Export ``candidate`` as ``export.request`` asks, as a zip in ``export_dir``, and record the
    export complete. A failure leaves no file behind."""
    export_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir))
    try:
        folder = work / f"job{job.id}-{candidate.name}"[:120]
        exported = export_stored(store, job, candidate, folder, **_options(export.request))
        zipped = zip_folder(exported.path, work / f"{folder.name}.zip")
        final = export_dir / f"export{export.id}-{zipped.name}"
        zipped.rename(final)
        try:
            return store.finish_export(export.id, "complete", path=str(final.resolve()), card=exported.card)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def failure_text(err: BaseException) -> str:
    """What failed: our own errors as they are (they name the field and the fix), others with
    their kind. The service redacts paths and URLs before a tenant reads it."""
    if isinstance(err, MemoryError):
        return "it ran out of memory; export without training, or fewer formats"
    if isinstance(err, FieldError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _options(request: dict[str, Any]) -> dict[str, Any]:
    """``export_candidate``'s options from a stored request (older requests lack the newer keys)."""
    keys = ("formats", "train_steps", "train_batch", "allow_untrained", "int8")
    return {k: tuple(v) if k == "formats" else v for k, v in request.items() if k in keys}
