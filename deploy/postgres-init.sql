-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- One database per concern, all owned by POSTGRES_USER:
--   mlflow     MLflow's tracking and model registry store (its own migrations)
--   panel      the panel's workflow: promotion requests, decisions, audit log
--   inference  the production inference log that drift reads (the demo writes it here)
CREATE DATABASE mlflow;
CREATE DATABASE panel;
CREATE DATABASE inference;
