"""Audits of the log: hash chains verified, resources traced, service state replayed,
invoices re-rated, cross-service invariants checked."""

from virga_audit.chain import (
    ChainChecker,
    ChainProblem,
    ProducerSummary,
    RecordLocation,
    UndecodableRecord,
    VerifyReport,
)
from virga_audit.check import DEFAULT_STUCK_AFTER, check
from virga_audit.invariants import Violation
from virga_audit.replay import REPLAYABLE, UnknownService, replay, replay_all, replay_state
from virga_audit.rerate import Difference, rerate
from virga_audit.trace import trace
from virga_audit.verify import verify

__all__ = [
    "DEFAULT_STUCK_AFTER",
    "REPLAYABLE",
    "ChainChecker",
    "ChainProblem",
    "Difference",
    "ProducerSummary",
    "RecordLocation",
    "UndecodableRecord",
    "UnknownService",
    "VerifyReport",
    "Violation",
    "check",
    "replay",
    "replay_all",
    "replay_state",
    "rerate",
    "trace",
    "verify",
]
