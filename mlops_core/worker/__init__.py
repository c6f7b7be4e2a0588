"""The worker: a long-running process beside the UI that runs the scheduled jobs, delivers
notifications from the outbox and receives MLflow registry webhooks (`python -m
mlops_core worker`). It sits above governance: it runs the same checks the pages run."""
