"""NAS on a summary: does training on a data summary rank architectures as the full data does?

The search space is NAS-Bench-201's cell space (Dong & Yang, "NAS-Bench-201: Extending the
Scope of Reproducible Neural Architecture Search", ICLR 2020): 15,625 cells in one fixed
macro network. The survey (Sachdeva & McAuley 2023, section 4) and DC-BENCH (Cui et al.,
NeurIPS 2022) use it to ask whether a summary preserves the *ranking* of architectures,
which is what a summary must do to stand in for the data during architecture search.

Modules: `space` (cells and their strings), `cell` and `network` (the model), `benchmark`
(the real benchmark file through `nas_201_api`), `scoring` (train a sample of cells on a
training set, cached), `zero_cost` (NASWOT, synflow, grad-norm at initialisation),
`agreement` (rank correlations and their bootstrap intervals), `pipeline` (one study),
`plots`, `table` (the Markdown table the README shows), `plugin` (`distill nas rank`).
"""
