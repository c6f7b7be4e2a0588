"""Staged rollouts: an approved version goes shadow -> canary % -> champion, watched by
guardrails, and published in the MLflow registry where a router reads it (`publish`).

States of a rollout (its request is `rolling_out` meanwhile, an open status):

    running --stage ready, auto or an approver's advance--> running (next stage)
       |  \\--last stage ready--> promoting --apply moved the champion--> completed
       |                               |--the champion moved meanwhile--> stale
       |--a guardrail breached--> rolled_back (request rolled_back)
       |--pause--> paused --resume--> running
       '--abort (running or paused)--> aborted (request rolled_back)

Rules:
- Start: the approver role, an approved request of a model whose policy has a
  `[models."name".rollout]` plan (approving such a request does not move the target), and
  the target still at the champion frozen in the request.
- Tick (`progress.tick_rollout`, `tick_all`): one at a time per rollout (a lease taken by
  a conditional UPDATE); evaluates the stage over the inference log (`guardrails`), stores
  the evaluation as evidence, then rolls back on any breach, advances when every minimum
  is met and every guardrail holds (automatically, or by an approver when
  `auto_advance = false`), holds otherwise. A paused rollout still rolls back on a breach.
- Promoting hands the request back to the promotion's own apply: the same compare-and-set
  against the frozen champion, version tags, stale detection and reconcile.
- Every change is a compare-and-set on the rollout row committed with its audit event;
  MLflow is written after, and `reconcile_rollouts` repairs what a dead process left.
- Serving reads the publication; `router` is the routing core that follows it (the
  reference router in `examples/` and the demo's traffic run it).
"""
