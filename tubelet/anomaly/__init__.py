"""Anomaly detection for fixed cameras: learn normal from normal footage only (`fit_normal`), then score new
footage — files, growing files, streams — into calibrated segments and events (`score_source`)."""

from tubelet.anomaly.config import AnomalyConfig
from tubelet.anomaly.fit import fit_normal
from tubelet.anomaly.normal import NormalModel
from tubelet.anomaly.score import Event, Segment, VideoScore, score_source

__all__ = ["AnomalyConfig", "Event", "NormalModel", "Segment", "VideoScore", "fit_normal", "score_source"]
