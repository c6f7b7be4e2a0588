"""The MLmodel file of a registered version: its flavors and signature.

MLflow 3 keeps a version's files on a LoggedModel (`models:/m-...`), not in its run's
artifacts, so the file is found through the registry's download URI.
"""

from __future__ import annotations

import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from requests.exceptions import RequestException

from mlops_core.errors import NotFound
from mlops_core.stores.registry import Registry, mlflow_error_message


def mlmodel_of(registry: Registry, model_name: str, version: str | int) -> Model:
    """`model_file_for_version`, read once per `Registry.reading_once` view (several gates
    of one decision need it)."""
    return registry.once(
        ("MLmodel", model_name, str(version)),
        lambda: model_file_for_version(registry.client, model_name, version),
    )


def model_file_for_version(client: MlflowClient, model_name: str, version: str | int) -> Model:
    """The parsed MLmodel file of a registered version; NotFound when it has none."""
    try:
        location = client.get_model_version_download_uri(model_name, str(version))
        with tempfile.TemporaryDirectory(prefix="mlops-mlmodel-") as folder:
            # Downloaded through the client's tracking URI: `models:/` URIs would use the
            # process-wide one, which may point at another store.
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/MLmodel",
                dst_path=folder,
                tracking_uri=client.tracking_uri,
            )
            return Model.load(local)
    except (MlflowException, RequestException) as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(
                f"Model {model_name!r} has no version {version}, or its files are missing."
            ) from None
        raise mlflow_error_message(exc, client.tracking_uri) from None
