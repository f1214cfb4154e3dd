"""The states of a job, a candidate and an export, defined once (the store, the search loop, the service,
its supervisor and the client all read these)."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a runner (the service's supervisor, or `nas run` about to start)
    RUNNING = "running"  # claimed by a live process (see nas.search.owner_alive)
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal or a stopping service: resumable

    @property
    def finished(self) -> bool:
        """No process runs the job or waits to (it may still be resumed)."""
        return self in FINISHED


class CandidateStatus(StrEnum):
    COMPLETE = "complete"  # priced, scored, on or off the front
    INFEASIBLE = "infeasible"  # a hard constraint rejected it before it was built
    FAILED = "failed"  # its evaluation raised or timed out


class ExportStatus(StrEnum):
    QUEUED = "queued"  # asked for; waits for the service's supervisor to start its process
    RUNNING = "running"  # claimed by that process (building, training, tracing)
    COMPLETE = "complete"  # its zip and card are ready
    FAILED = "failed"  # `error` says why; ask for it again


FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED})
UNFINISHED = tuple(s for s in JobStatus if s not in FINISHED)  # what a tenant's quota counts
JOB_STATUSES = tuple(s.value for s in JobStatus)
CANDIDATE_STATUSES = tuple(s.value for s in CandidateStatus)
EXPORT_STATUSES = tuple(s.value for s in ExportStatus)
UNFINISHED_EXPORTS = (ExportStatus.QUEUED, ExportStatus.RUNNING)  # counted in a tenant's quota, as unfinished jobs are
