"""Insights: what is sub-par, missing or frictional, each with its evidence; and the roadmap they become."""
