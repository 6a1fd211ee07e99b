"""Pre-publish analysis of a video: cuts and pacing, dead stretches, repeats, distinctiveness, originality."""

from tubelet.analysis.report import Analysis, analyze, write_report

__all__ = ["Analysis", "analyze", "write_report"]
