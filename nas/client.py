"""A Python client of the service, one method per route.

    from nas.client import Client
    client = Client("http://127.0.0.1:8000", token=None)
    job = client.submit("docs/examples/edge-classifier.yaml")
    client.wait(job["id"])
    client.pareto(job["id"], where="latency_ms<1.25", fields="id,name,accuracy,latency_ms")
    client.export(job["id"], out="winner/")               # the best on the first objective (waits for it)

Responses are the API's JSON as dicts; an error response raises ``ClientError`` with the status and
the service's ``detail`` (for invalid input, one entry per field).
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx

from nas.status import FINISHED

TOKEN_ENV = "NAS_TOKEN"


class ClientError(RuntimeError):
    def __init__(self, status: int, detail: Any, url: str) -> None:
        self.status, self.detail, self.url = status, detail, url
        if isinstance(detail, list):
            text = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'body'}: {d.get('msg')}" for d in detail
            )
        else:
            text = str(detail)
        super().__init__(f"{status} from {url}: {text}")


class ExportFailedError(RuntimeError):
    """The service ran the export and it failed; ``record`` is the export, its ``error`` the reason."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        super().__init__(f"export {record['id']} of job {record['job_id']} failed: {record['error']}")


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 600.0) -> None:
        token = token or os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- routes ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    def submit(self, spec: str | Path | dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """Submit a spec (a YAML/JSON file, or a mapping); ``overrides`` replace its top-level keys."""
        if isinstance(spec, dict):
            data = spec
        else:
            import yaml

            path = Path(spec)
            data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        return self._call("POST", "/jobs", json={**data, **overrides})

    def jobs(
        self, *, status: str | None = None, tag: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        return self._call("GET", "/jobs", params=_params(status=status, tag=tag, limit=limit, offset=offset))

    def job(self, job_id: int) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def resume(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/resume")

    def train(self, job_id: int, top: int) -> dict[str, Any]:
        """Measure the front's best ``top`` candidates (the service continues the job to train them)."""
        return self._call("POST", f"/jobs/{job_id}/train", json={"top": top})

    def hypervolume(self, job_id: int) -> list[dict[str, Any]]:
        return self._call("GET", f"/jobs/{job_id}/hypervolume")

    def pareto(
        self,
        job_id: int,
        *,
        where: str | list[str] | None = None,
        sort: str | None = None,
        descending: bool | None = None,
        fields: str | list[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        params = _params(
            where=",".join(where) if isinstance(where, list) else where,
            sort=sort,
            descending=descending,
            fields=",".join(fields) if isinstance(fields, list) else fields,
            limit=limit,
            offset=offset,
        )
        return self._call("GET", f"/jobs/{job_id}/pareto", params=params)

    def candidates(self, job_id: int, *, status: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call(
            "GET", f"/jobs/{job_id}/candidates", params=_params(status=status, limit=limit, offset=offset)
        )

    def candidate(self, job_id: int, ref: int | str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/candidates/{ref}")

    def export(
        self,
        job_id: int,
        candidate: int | str | None = None,
        *,
        out: str | Path | None = None,
        where: str | None = None,
        sort: str | None = None,
        formats: str = "default",
        train_steps: int = 0,
        train_batch: int | None = None,
        allow_untrained: bool = False,
        int8: bool = False,
        timeout: float = 1800.0,
        poll_s: float = 1.0,
    ) -> dict[str, Any]:
        """Export a candidate (default: the best under ``where``): the service queues it and runs
        it apart; this waits (``wait_export``, up to ``timeout`` s) until it is complete, and with
        ``out`` downloads and unpacks it there. Returns the export's record, plus ``path`` (the
        unpacked folder) when downloaded. Raises ``ExportFailedError`` if the export failed."""
        if out is not None:
            _check_out(out)  # before the service builds anything
        # int8 only when asked (None is not sent): a server from before INT8 still answers the rest
        body = {"candidate": candidate, "where": where, "sort": sort, "formats": formats, "train_steps": train_steps,
                "train_batch": train_batch, "allow_untrained": allow_untrained, "int8": int8 or None}  # fmt: skip
        queued = self._call("POST", f"/jobs/{job_id}/export", json={k: v for k, v in body.items() if v is not None})
        record = self.wait_export(queued["id"], timeout=timeout, poll_s=poll_s)
        if record["status"] == "failed":
            raise ExportFailedError(record)
        if out is not None:
            record["path"] = str(self.download(record["id"], out))
        return record

    def export_card(self, export_id: int) -> dict[str, Any]:
        """The export's record: its status, and once complete its files and model card."""
        return self._call("GET", f"/exports/{export_id}/card")

    def wait_export(self, export_id: int, *, timeout: float = 1800.0, poll_s: float = 1.0) -> dict[str, Any]:
        """Poll the export until it is complete or failed; returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.export_card(export_id)
            if record["status"] in ("complete", "failed"):
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"export {export_id} is still {record['status']} after {timeout:.0f} s")
            time.sleep(poll_s)

    def download(self, export_id: int, out: str | Path) -> Path:
        """Unpack export ``export_id`` into the folder ``out`` (new or empty); returns it."""
        out = _check_out(out)
        response = self._http.get(f"/exports/{export_id}")
        _check(response)
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            for member in archive.infolist():
                name = Path(*Path(member.filename).parts[1:])  # entries sit under the export's folder
                if member.is_dir() or not name.parts or ".." in name.parts or name.is_absolute():
                    continue
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(archive.read(member))
        return out

    def compare(
        self, job_id: int, accelerators: list[str] | None = None, *, every_candidate: bool = False
    ) -> dict[str, Any]:
        """The job's front (or every complete candidate) re-priced on other accelerators."""
        params = _params(accelerators=",".join(accelerators) if accelerators else None, all=every_candidate or None)
        return self._call("GET", f"/jobs/{job_id}/compare", params=params)

    def sweep(self, grid: dict[str, list[float]], *, preset: str | None = None, arch: dict | None = None,
              **options: Any) -> dict[str, Any]:  # fmt: skip
        """One network (a preset or an ArchConfig) priced over a grid of chip parameters."""
        body = {"grid": grid, "preset": preset, "arch": arch, **options}
        return self._call("POST", "/hw/sweep", json={k: v for k, v in body.items() if v is not None})

    def accelerators(self) -> list[dict[str, Any]]:
        return self._call("GET", "/accelerators")

    def spaces(self) -> list[dict[str, Any]]:
        return self._call("GET", "/spaces")

    def wait(self, job_id: int, *, timeout: float = 3600.0, poll_s: float = 1.0) -> dict[str, Any]:
        """Poll until the job has finished: completed, cancelled, failed, or interrupted when no
        service will resume it (a job the service runs resumes when the service restarts)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in FINISHED or (job["status"] == "interrupted" and not job["managed"]):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout:.0f} s")
            time.sleep(poll_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ConnectionError(f"cannot reach the service at {self.url}: {err}; is `nas serve` running?") from err
        _check(response)
        return response.json()


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise ClientError(response.status_code, detail, str(response.request.url))


def _check_out(out: str | Path) -> Path:
    """``out`` if it can take an export: a new or empty folder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"out: {out} exists and is not an empty folder; give a new one")
    return out


def _params(**values: Any) -> dict[str, Any]:
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in values.items() if v is not None}
