# The streamrules image: the processor (`streamrules run`), `streamrules topics apply`, and
# the demo producer, as wired in docker-compose.yml. Settings come from STREAMRULES_*
# environment variables, exactly as on a developer machine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY streamrules ./streamrules
# topics/ (topics.toml, JSON Schemas) is read next to the package: an editable install
# keeps /app/topics where streamrules.topics and the codec look for it.
COPY topics ./topics
RUN pip install -e '.[prometheus]' \
    && useradd --create-home --uid 10001 streamrules

USER streamrules
ENTRYPOINT ["streamrules"]
CMD ["run"]
