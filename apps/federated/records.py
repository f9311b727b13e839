"""Summaries as Flower records, and the payload bytes a message carries.

A reply holds `RecordDict({"summary": ArrayRecord(images, labels), "meta":
ConfigRecord(...)})`: plain arrays and scalars, so any Flower server can read it.
"""

from __future__ import annotations

import json

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from datadistill.errors import DistillError
from datadistill.spec import DataSpec
from datadistill.summary import Summary

SUMMARY = "summary"
META = "meta"


def summary_to_record(summary: Summary, *, partition_id: int) -> RecordDict:
    """The client's reply: images and labels as arrays, how they were made as config."""
    arrays = ArrayRecord({"images": summary.images.cpu(), "labels": summary.labels.cpu()})
    meta = ConfigRecord({
        "partition-id": partition_id,
        "method": summary.method,
        "ipc": summary.ipc,
        "stored-bytes": int(summary.stored_bytes),
        "examples": int(summary.extra.get("examples", 0)),
        "extra": json.dumps(summary.extra),
    })  # fmt: skip
    return RecordDict({SUMMARY: arrays, META: meta})


def record_to_summary(content: RecordDict, *, spec: DataSpec) -> Summary:
    """Rebuild a Summary from a client's reply; refuses a reply for another dataset."""
    if SUMMARY not in content or META not in content:
        raise DistillError(f"a reply lacks '{SUMMARY}'/'{META}' records; is the client ours?")
    state = content[SUMMARY].to_torch_state_dict()
    meta = content[META]
    extra = json.loads(str(meta["extra"]))
    extra["partition_id"] = int(meta["partition-id"])
    return Summary(
        images=state["images"],
        labels=state["labels"],
        spec=spec,
        method=str(meta["method"]),
        ipc=int(meta["ipc"]),
        stored_bytes=int(meta["stored-bytes"]),
        extra=extra,
    )


def payload_bytes(content: RecordDict) -> int:
    """Bytes of a message's records (arrays, configs, metrics), as Flower counts them."""
    return sum(record.count_bytes() for record in content.values())


def partition_of(message: Message) -> int | None:
    """The partition id a reply names in its config or metrics, if any."""
    if message.has_error():
        return None
    for record in message.content.values():
        if not isinstance(record, ArrayRecord) and "partition-id" in record:
            return int(record["partition-id"])
    return None


def state_dict_record(net: torch.nn.Module) -> ArrayRecord:
    return ArrayRecord(net.state_dict())
