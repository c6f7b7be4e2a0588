# The panel image; docker-compose.yml also runs the MLflow server and the demo from it, so
# every process uses the MLflow pinned in requirements.txt. Health checks live in the
# compose file, because the one image serves several roles.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: code changes then rebuild in seconds.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Named volumes mounted on these folders start with this owner, so the unprivileged user
# can write the panel's data folder and MLflow's artifacts.
RUN useradd --create-home --uid 10001 panel \
    && mkdir -p /data /mlartifacts \
    && chown panel:panel /data /mlartifacts
USER panel

ENV MLOPS_DATA_DIR=/data
EXPOSE 8501 5000

CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
