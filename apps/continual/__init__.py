"""Continual learning with distilled memories, in Avalanche's own training loop.

Deng & Russakovsky, "Remember the Past: Distilling Datasets into Addressable Memories for
Neural Networks" (NeurIPS 2022), and the survey's section 4 (Sachdeva & McAuley, 2023):
after each experience, compress its data into a small distilled summary and keep it;
later experiences replay the summaries, or a fresh model is trained on the summaries
alone (compress-then-recall, GDumb's protocol with a distilled buffer).

Modules: `bench` (Split-digits / Split-Fashion-MNIST from datadistill's datasets), `memory`
(the distilled storage policy and the memory accounting shared by every buffer),
`strategies` (a registry: Avalanche baselines and the two distilled-memory modes),
`loop` (one stream in Avalanche's loop -> accuracy matrix, average accuracy,
forgetting), `plugin` (`distill continual ...`).
"""
