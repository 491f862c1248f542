"""What the streamrules image installs before its code (the Dockerfile's "dependencies
first" layer, and the wheels tools/compose/setup.sh builds on the host for it): the
build-system requirements, the dependencies and the ``prometheus`` extra of pyproject.toml,
one requirement a line. Outside the event flow: image building only.

Usage: python requirements.py PYPROJECT_TOML
"""

import sys
import tomllib

EXTRAS = ("prometheus",)


def requirements(pyproject: dict[str, object]) -> list[str]:
    project = pyproject["project"]
    build = pyproject["build-system"]
    assert isinstance(project, dict) and isinstance(build, dict)
    extras = project.get("optional-dependencies", {})
    return [
        *build["requires"],
        *project["dependencies"],
        *(req for extra in EXTRAS for req in extras[extra]),
    ]


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        print("\n".join(requirements(tomllib.load(f))))
