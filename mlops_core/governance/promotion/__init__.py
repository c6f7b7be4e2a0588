"""The promotion workflow: request, four-eyes decision, compare-and-set apply, rollback.

Every action takes the acting user and checks their role and the workflow rules here, so
the UI hiding a button is never the protection. Each state change commits in one
transaction with its audit event (`audit.atomic`).

States of a request:

    pending --approve (enough approvers)--> approved --apply claims it--> applying
       |--reject--> rejected                   |                             |--> applied
       |--cancel--> cancelled <-----cancel-----'                             |--> stale
                                  approved <--MLflow failed, alias not moved-'
    applied --rollback--> rolled_back

    An applying request whose MLflow part failed after the alias moved stays applying
    (with last_error) until a retry or reconcile completes it.

Rules:
- Request: the requester role; the champion version at that moment and the gate results
  are frozen into the request. One open (pending/approved/applying) request per
  (model, alias), enforced by a unique partial index in the database.
- Decide: the approver role, never the request's own requester (four eyes, admins too),
  with a comment. Gates are evaluated again; a gate that failed or could not be evaluated
  blocks approval unless an admin overrides with a written justification (audited as
  "override"). Any rejection rejects; `approvals_required` distinct approvals approve.
  Deciding starts with a conditional UPDATE on the pending request, so concurrent deciders
  are serialised by the database: the one that comes second sees "already decided".
- Cancel: the requester or an admin, while pending or approved. Not once applying.
- Apply (right after the approving decision, or `retry_apply`): first a conditional UPDATE
  claims the approved request (applying, audited as "apply_started") and commits, so a
  cancel racing the apply either comes first (nothing is applied) or is refused. Then the
  compare-and-set against the frozen champion: if the alias points elsewhere the request
  goes stale; if MLflow fails before the alias moved it is approved again with
  `last_error`; after the move it stays applying until a retry or `reconcile` completes
  it, so it never reads "failed" with the alias moved. What the caller is told is the
  state that was committed. MLflow has no atomic compare-and-set on aliases: a move by
  someone else in the instant between our read and our write is not prevented, but
  `reconcile` reports it.
- Reconcile: an applying request whose apply stopped (a killed process) is completed when
  its alias already points at the candidate, or approved again (alias at the champion)
  once the apply is no longer in flight; neither is an "alias moved outside the panel".
- Rollback: the approver role; moves the alias back to the champion frozen in the last
  applied request, only while the alias still points at what that request applied.
"""
