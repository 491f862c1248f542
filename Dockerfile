# The streamrules image: the processor (`streamrules run`), `streamrules topics apply`, and
# the demo producer, as wired in docker-compose.yml. Settings come from STREAMRULES_*
# environment variables, exactly as on a developer machine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall
# them. Wheels in .compose/wheels (tools/compose/setup.sh builds them on the host, for
# machines whose containers cannot reach PyPI) are installed without an index; without
# them (the glob matches nothing) pip uses PyPI.
COPY pyproject.toml tools/compose/requirements.py .compose/wheel[s] /tmp/deps/
RUN python /tmp/deps/requirements.py /tmp/deps/pyproject.toml > /tmp/deps/requirements.txt \
    && if ls /tmp/deps/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /tmp/deps; fi \
    && pip install "$@" -r /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps

# Then the code. topics/ (topics.toml, JSON Schemas) is read next to the package: an
# editable install keeps /app/topics where streamrules.topics and the codec look for it.
COPY pyproject.toml README.md ./
COPY streamrules ./streamrules
COPY topics ./topics
RUN pip install --no-deps --no-build-isolation -e . \
    && useradd --create-home --uid 10001 streamrules

USER streamrules
ENTRYPOINT ["streamrules"]
CMD ["run"]
