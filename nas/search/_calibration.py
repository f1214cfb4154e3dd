"""Moved to ``nas.search._predictor`` ("calibration" names the chip model's fit); kept for old imports."""

from nas.search._predictor import (  # noqa: F401 - the names importers of this path use
    MIXER_FAMILIES,
    PRIOR_SETUP,
    PROSPECTIVE_KEPT,
    UNKNOWN_OFFSET,
    AccuracyPredictor,
    arch_encoding,
    predictor_features,
)
