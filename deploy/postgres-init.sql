-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- One database per concern:
--   mlflow     MLflow's tracking and model registry store (its own migrations)
--   panel      the panel's workflow: promotion requests, decisions, audit log
--   inference  the production inference log that drift reads (the demo writes it here)
--
-- Two roles for the panel database. POSTGRES_USER (made by the image) owns it and runs the
-- panel's migrations (the compose `migrate` service). panel_app is what the panel and the
-- demo connect as: migration 0002 lets it read and append the audit log, never update,
-- delete or truncate it, and, owning nothing there, it cannot switch off the triggers.
-- Its password comes from PANEL_DB_PASSWORD in .env (psql 15 or newer reads it).
\getenv panel_app_password PANEL_DB_PASSWORD
CREATE ROLE panel_app LOGIN PASSWORD :'panel_app_password';

CREATE DATABASE mlflow;
CREATE DATABASE panel;
-- The panel only reads the inference log; the demo creates its tables as panel_app.
CREATE DATABASE inference OWNER panel_app;

-- Nobody but the owner and panel_app connects to the panel database, and the panel's
-- role reaches MLflow only through the server, never its database.
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE panel FROM PUBLIC;
GRANT CONNECT ON DATABASE panel TO panel_app;
\connect panel
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
