"""Pre-publish analysis of a video: shots and transitions, pacing, dead stretches, the opening, repeats,
distinctiveness over time, originality and pacing against a catalog, and a fix list."""

from tubelet.analysis.report import Analysis, analyze, to_json, write_report
from tubelet.analysis.transitions import DETECTORS, ShotDetector, Transition, detector

__all__ = ["DETECTORS", "Analysis", "ShotDetector", "Transition", "analyze", "detector", "to_json", "write_report"]
