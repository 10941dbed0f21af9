"""Audits of the log: hash chains verified, resources traced, service state replayed."""

from virga_audit.chain import (
    ChainChecker,
    ChainProblem,
    ProducerSummary,
    RecordLocation,
    UndecodableRecord,
    VerifyReport,
)
from virga_audit.replay import REPLAYABLE, UnknownService, replay, replay_state
from virga_audit.trace import trace
from virga_audit.verify import verify

__all__ = [
    "REPLAYABLE",
    "ChainChecker",
    "ChainProblem",
    "ProducerSummary",
    "RecordLocation",
    "UndecodableRecord",
    "UnknownService",
    "VerifyReport",
    "replay",
    "replay_state",
    "trace",
    "verify",
]
