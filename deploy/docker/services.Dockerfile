# Every Python service of the product, from the project's lock file: one image, a command per
# service (python -m services.renewal, services.billing, services.quote, services.notification,
# services.bulk_worker; `renewals` is the operator CLI).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Certificate authorities the building machine trusts beyond Debian's (images.py copies them).
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ARG UV_VERSION
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --disable-pip-version-check "uv==${UV_VERSION}"
ENV UV_PYTHON=/usr/bin/python3 UV_PYTHON_DOWNLOADS=never UV_NATIVE_TLS=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
# The locked dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY shared/ shared/
COPY services/ services/
COPY deploy/ deploy/
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
# Readiness of whichever service the container runs (RENEWALS_HTTP_PORT, /ready).
HEALTHCHECK --interval=1s --timeout=3s --retries=120 CMD python3 -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"RENEWALS_HTTP_PORT\"]}/ready', timeout=2)"
CMD ["renewals", "--help"]
