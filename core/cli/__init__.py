"""`distill`: the command line, the top layer. Nothing in the engine imports it.

`main` parses and dispatches, `options` holds the flags commands share (and `parse_settings`
for `--set`, which apps' command modules reuse), `run` turns `distill run`'s arguments into a
typed config and calls the one front door (`datadistill.distill.run`) for every modality.
"""
