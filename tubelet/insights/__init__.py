"""Insights over a catalog: interest clusters, cold-start recommendations and trends, from the embeddings alone."""

from tubelet.insights.clusters import Cluster, Clustering, ClusterParams
from tubelet.insights.recommend import Recommendation, recommend
from tubelet.insights.trends import Trend, TrendReport, find_trends

__all__ = ["Cluster", "ClusterParams", "Clustering", "Recommendation", "Trend", "TrendReport", "find_trends",
           "recommend"]
