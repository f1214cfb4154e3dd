"""Moved to ``nas.pricing`` (job control prices without the search loop's imports); kept for old imports."""

from nas.pricing import (  # noqa: F401 - the names importers of this path use
    ChipChoice,
    Priced,
    accelerator_from_json,
    accelerator_to_json,
    candidate_accelerator,
    candidate_key,
    chip_label,
    price,
    resolve_accelerator,
    stored_report,
)
