"""Federated distillation: clients upload a distilled summary once instead of model updates.

Survey section 4 (Sachdeva & McAuley, "Data Distillation: A Survey", TMLR 2023): in
federated learning each client can distil its local data and send the small summary to
the server, which trains one global model on the union (one-shot federated learning,
e.g. Zhou et al., "Distilled One-Shot Federated Learning", 2020). The baseline is FedAvg
(McMahan et al., AISTATS 2017) through Flower's own strategy.

The distil/aggregate logic lives in plain functions (`partition`, `local`, `server`,
`records`) that run without Flower; `flower_app` is the thin Message-API layer, and
`simulate` / `deploy` run it on Flower's simulation engine or on real SuperNodes. The
statistics scheme (`statistics`, `stats_server`, `stats_flower`) uploads DM's class
statistics under a broadcast pool of embedders instead of summaries (issue 39), exact or
through dp-dm's release with a per-client epsilon (`private`).
"""
