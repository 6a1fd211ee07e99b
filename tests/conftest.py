"""Shared test fixtures: where the team's real clips live (../shared/data/videos beside the repository)."""

from pathlib import Path

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
