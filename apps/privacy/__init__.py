"""Differential privacy app."""
