"""Graph condensation (survey section 3, "graphs"): node- and graph-classification summaries.

A graph summary is a small synthetic graph: node features X', an adjacency A' and labels.
GCond (gradient matching) and GCDM (distribution matching) learn one synthetic graph for
node classification, with A' generated from X' by a learnt MLP; DosCond learns a set of small
synthetic graphs for graph classification, each adjacency a matrix of Bernoulli parameters.

Modules, one job each: `data` (registry of real and generated graphs), `nets` (GCN, SGC,
GraphSAGE on a normalised adjacency; a dense GCN with pooling for graph classification),
`params` (the parameterisations), `objectives` (their losses), `stepper` (Adam per parameter
group, the presets' hook into the shared outer loop), `evaluate` (train on the summary, test
on the real graph) and `summary` (the file format, and the presets' `summarise` hook). The
presets themselves are `datadistill.methods.graph`; they run through `datadistill.distill.run`.
"""
