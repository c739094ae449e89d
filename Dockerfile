# syntax=docker/dockerfile:1
# The Open Dealer scheduler's Airflow image: the official Airflow 3.3.2 image with the od-scheduler wheel,
# the project's pinned runtime requirements, its DAGs, its Airflow plugin and the setup tool.
#
#   docker compose build                          # what docker-compose.yaml runs (every Airflow service)
#   docker build -t od-scheduler:3.3.2 .          # the same image on its own, e.g. to push to a registry
#
# Every worker host runs this one image, so what a task imports is what was built and tested here; nothing
# is installed when a container starts (no _PIP_ADDITIONAL_REQUIREMENTS).

# --- 1. the od-scheduler wheel, built from this repository (src/od_scheduler, pyproject.toml) -----------
FROM apache/airflow:3.3.2-python3.11 AS wheel
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/od-scheduler-src/
COPY --chown=airflow:0 src/ /opt/airflow/od-scheduler-src/src/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /opt/airflow/od-scheduler-dist /opt/airflow/od-scheduler-src

# --- 2. Airflow with the project ------------------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11

# Airflow's published constraints for this Airflow and Python (the version in the URL is the image's).
ARG AIRFLOW_CONSTRAINTS_URL=https://raw.githubusercontent.com/apache/airflow/constraints-3.3.2/constraints-3.11.txt

# The two steps of Airflow's own instructions (docs "Installation from PyPI", and the constraints file's
# header): (1) the reproducible step, against the constraints: the wheel, its dependencies resolved to the
# versions Airflow 3.3.2 was released and tested with, and apache-airflow pinned to the image's version
# so nothing moves it; (2) the project's own pins, without the constraints: requirements.txt pins every
# runtime package (apache-airflow==3.3.2 among them, which keeps Airflow where it is) to the versions this
# repository's tests ran, including deliberate departures (celery 5.6.3: 5.7 breaks the celery provider
# 3.26.0). `pip check` then fails the build if the two disagree with each other or with a provider the
# base image ships (recompile requirements.txt against the constraints file when it does).
# The wheel and requirements.txt are bind-mounted, so neither stays in a layer.
RUN --mount=type=bind,from=wheel,source=/opt/airflow/od-scheduler-dist,target=/tmp/od-scheduler-dist \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/od-scheduler-dist/*.whl \
        --constraint "${AIRFLOW_CONSTRAINTS_URL}"
RUN --mount=type=bind,source=requirements.txt,target=/tmp/od-scheduler-requirements.txt \
    pip install --no-cache-dir -r /tmp/od-scheduler-requirements.txt \
    && pip check

# The DAGs and the Airflow plugin (the status app) at the image's default dags_folder and plugins_folder;
# the package itself comes only from the wheel (.dockerignore keeps any plugins/od_scheduler copy out, which
# would shadow it: plugins_folder is on sys.path). include/ carries the setup tool (airflow-init runs
# `python -m include.tools.setup_project` from /opt/airflow) and the shared pools (a platform's pool is in the
# package's registry).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/

# Task logs go to a named volume in docker-compose.yaml; a new named volume takes the owner and mode of the
# image's directory, so it is created here for the airflow user (uid 50000, gid 0) and never root-owned.
USER root
RUN install -d -o airflow -g 0 -m 2775 /opt/airflow/logs
USER airflow
