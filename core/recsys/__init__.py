"""Recommender data distillation: Distill-CF with the infinity-AE (survey section 3)."""
