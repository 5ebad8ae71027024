"""The production layer: cost ledger and budgets, proof-of-action log, escalation, feedback events, policy
files, approvals a person gives, and signed receipts."""

from __future__ import annotations

from parsimon.governance.approvals import Approval, ApprovalAsk, ApprovalStore, get_approvals
from parsimon.governance.audit import AuditLog, JsonlAuditLog, get_audit_log, verify_jsonl
from parsimon.governance.chain import AuditRecord, Head, VerifyReport
from parsimon.governance.escalation import (
    DEFAULT_IRREVERSIBLE,
    Decision,
    EscalationConfig,
    EscalationPolicy,
    ProposedAction,
    escalate,
)
from parsimon.governance.feedback import (
    POLICIES,
    AdaptivePolicy,
    CallbackSink,
    FeedbackEmitter,
    FeedbackEvent,
    JsonlSink,
    PlanAndResultsPolicy,
    SilentUntilFinalPolicy,
    TerminalSink,
    VerbosePolicy,
    resolve_policy,
)
from parsimon.governance.ledger import METRICS, BudgetWarning, Ledger, LedgerEvent, get_ledger
from parsimon.governance.policy import Policy, PolicyVerdict, Rule, load_policy
from parsimon.governance.receipts import (
    Checkpoint,
    ReceiptReport,
    export_receipt,
    sign_checkpoint,
    verify_checkpoints,
    verify_receipt,
)
from parsimon.governance.scope import Scope, current_scope, new_run_id, run_scope

__all__ = [
    "DEFAULT_IRREVERSIBLE",
    "METRICS",
    "POLICIES",
    "AdaptivePolicy",
    "Approval",
    "ApprovalAsk",
    "ApprovalStore",
    "Checkpoint",
    "Policy",
    "PolicyVerdict",
    "ReceiptReport",
    "Rule",
    "export_receipt",
    "get_approvals",
    "load_policy",
    "sign_checkpoint",
    "verify_checkpoints",
    "verify_receipt",
    "AuditLog",
    "AuditRecord",
    "BudgetWarning",
    "CallbackSink",
    "Decision",
    "EscalationConfig",
    "EscalationPolicy",
    "FeedbackEmitter",
    "FeedbackEvent",
    "Head",
    "JsonlAuditLog",
    "JsonlSink",
    "Ledger",
    "LedgerEvent",
    "PlanAndResultsPolicy",
    "ProposedAction",
    "Scope",
    "SilentUntilFinalPolicy",
    "TerminalSink",
    "VerbosePolicy",
    "VerifyReport",
    "current_scope",
    "escalate",
    "get_audit_log",
    "get_ledger",
    "new_run_id",
    "resolve_policy",
    "run_scope",
    "verify_jsonl",
]
