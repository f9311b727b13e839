"""Text data distillation in word-embedding space (Sucholutsky & Schonlau, 2021)."""
