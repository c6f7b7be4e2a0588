"""The promotion workflow: request, four-eyes decision, compare-and-set apply, rollback.

Every action takes the acting user and checks their role and the workflow rules here, so
the UI hiding a button is never the protection. Each state change commits in one
transaction with its audit event (`audit.atomic`).

States of a request:

    pending --approve (enough approvers)--> approved --apply--> applied --rollback--> rolled_back
       |                                       |  \\--champion moved meanwhile--> stale
       |--reject--> rejected                   |--MLflow failed: stays approved, last_error set,
       |--cancel--> cancelled <----cancel------'   retry with `retry_apply`

Rules:
- Request: the requester role; the champion version at that moment and the gate results
  are frozen into the request. One open (pending/approved) request per (model, alias),
  enforced by a unique partial index in the database.
- Decide: the approver role, never the request's own requester (four eyes, admins too),
  with a comment. Gates are evaluated again; a gate that failed or could not be evaluated
  blocks approval unless an admin overrides with a written justification (audited as
  "override"). Any rejection rejects; `approvals_required` distinct approvals approve.
  Deciding starts with a conditional UPDATE on the pending request, so concurrent deciders
  are serialised by the database: the one that comes second sees "already decided".
- Apply (right after the approving decision, or `retry_apply`): compare-and-set against
  the frozen champion. If the alias points elsewhere the request goes stale; if MLflow
  fails the request stays approved with `last_error`. Marking it applied is a conditional
  UPDATE, so a double click cannot apply twice. MLflow has no atomic compare-and-set on
  aliases: a move by someone else in the instant between our read and our write is not
  prevented, but `reconcile` reports it.
- Rollback: the approver role; moves the alias back to the champion frozen in the last
  applied request, only while the alias still points at what that request applied.
"""
