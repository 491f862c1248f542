# Stand-in for the python:3.11-slim image, for machines that cannot pull it (no image
# registry): tools/compose/setup.sh builds it only then. Debian bookworm's python3.11 and
# pip (in the stand-ins' common root filesystem, BASE), installing into the system Python
# as the real image does.
ARG BASE=streamrules-standin/bookworm
FROM ${BASE}
ENV LANG=C.UTF-8
CMD ["python3"]
