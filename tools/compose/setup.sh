#!/usr/bin/env bash
# `make compose-images` (and the first step of `make compose-test`): everything the
# docker-compose stack needs on this machine, idempotently. Outside the event flow: the
# test bench of docker-compose.yml.
#
# 1. docker.io (Engine), docker-compose and mmdebstrap from Debian (apt-get) where missing;
# 2. a dockerd when none answers (published ports default to 127.0.0.1);
# 3. the images docker-compose.yml names that are not built from this repository: an image
#    already present is used as it is; else it is pulled; where that fails (no image
#    registry), a stand-in is built from Debian packages and tagged with the same name:
#      python:3.11-slim        bookworm's python3.11 and pip (the Dockerfile's base)
#      apache/kafka:<version>  bookworm's Java 17, the local broker's Kafka jars and a
#                              launcher reading KAFKA_* as the real image does
#      prom/prometheus:<ver>   bookworm's prometheus package, the version of the tag
#    Grafana has no Debian package: without a registry there is no Grafana image, and the
#    test runs the stack without it. A stand-in carries the label dev.streamrules.standin
#    (a digest of what it was built from) and is rebuilt when that changes.
# 4. wheels of the streamrules image's dependencies, built on the host (whose certificate
#    authorities reach PyPI) into .compose/wheels, which the Dockerfile installs offline.
#
# Usage: tools/compose/setup.sh [--print-services]   (PYTHON=... for another interpreter)
# --print-services prints the compose services whose images are available (for the test).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$ROOT/.compose
PYTHON=${PYTHON:-python}
APT=(apt-get -o DPkg::Lock::Timeout=600)
SUITE=bookworm
# Smaller root filesystems: no documentation, manual pages or translations (the man1
# folder stays: the JRE's update-alternatives links its manual page there).
MMDEBSTRAP=(mmdebstrap --variant=minbase --quiet
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --setup-hook='mkdir -p "$1/usr/share/man/man1"')

log() { echo "compose-setup: $*" >&2; }
die() {
    log "$*"
    exit 2
}

compose_image() { # the image: of a service in docker-compose.yml
    "$PYTHON" - "$1" <<'EOF'
import sys
import yaml
services = yaml.safe_load(open("docker-compose.yml"))["services"]
print(services[sys.argv[1]]["image"])
EOF
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v docker >/dev/null || missing+=(docker.io)
    ((${#missing[@]})) || return 0
    [ "$(id -u)" = 0 ] || die "needs root to install ${missing[*]} (or install them yourself)"
    command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} yourself"
    log "apt-get install ${missing[*]}"
    "${APT[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq "${missing[@]}" >/dev/null
}

start_dockerd() {
    docker info >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "no Docker engine answers, and starting dockerd needs root"
    log "starting dockerd (log: /var/log/streamrules-dockerd.log)"
    # --ip: ports published without an address listen on the loopback only. setsid: the
    # engine outlives this script (images and a second run reuse it).
    setsid dockerd --ip 127.0.0.1 >>/var/log/streamrules-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    tail -20 /var/log/streamrules-dockerd.log >&2
    die "dockerd did not answer within 60 s"
}

digest() { # a short digest of its arguments, of the files and of the folders' listings
    local item
    for item in "$@"; do
        if [ -f "$item" ]; then
            sha256sum "$item"
        elif [ -d "$item" ]; then
            (cd "$item" && find . -type f -printf '%p %s\n' | LC_ALL=C sort)
        else
            echo "$item"
        fi
    done | sha256sum | cut -c1-16
}

standin_label() { # the stand-in label of image $1 (empty for a real one); 1 when absent
    docker image inspect -f '{{index .Config.Labels "dev.streamrules.standin"}}' "$1" 2>/dev/null
}

real_image() { # 0 when image $1 is a real one: here already, or pulled now
    local label
    if label=$(standin_label "$1"); then
        [ -z "$label" ] && return 0
        return 1
    fi
    if docker pull -q "$1" >/dev/null 2>&1; then
        log "$1: pulled"
        return 0
    fi
    log "$1: cannot be pulled (no image registry?): a stand-in from Debian packages"
    return 1
}

stale() { # 0 when stand-in $1 is absent or was built from other inputs than digest $2
    local label
    label=$(standin_label "$1") || return 0
    [ "$label" = "$2" ] && return 1
    log "$1: stand-in out of date, rebuilding"
    return 0
}

# The stand-ins' one root filesystem: bookworm with Python 3.11 and pip, Java 17 and
# Prometheus. One mmdebstrap run and one image layer shared by the three stand-ins is
# minutes faster than a root filesystem each; the price is a larger python stand-in.
BASE=streamrules-standin/bookworm
BASE_PACKAGES=python3.11,python3-pip,python-is-python3,openjdk-17-jre-headless,prometheus
BASE_HOOKS=(
    # pip installs into the system Python as in the python image (no PEP 668 marker).
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'
    # Prometheus' data folder, as in the prom/prometheus image.
    --customize-hook='mkdir -p "$1/prometheus" && chroot "$1" chown nobody:nogroup /prometheus'
)

base_image() {
    local want tar=$WORK/rootfs.tar start=$SECONDS
    want=$(digest "$BASE_PACKAGES" "${BASE_HOOKS[@]}" "${MMDEBSTRAP[@]}")
    stale "$BASE" "$want" || return 0
    mkdir -p "$WORK"
    # Through a file: a failed mmdebstrap must not leave a half image behind.
    "${MMDEBSTRAP[@]}" --include="$BASE_PACKAGES" "${BASE_HOOKS[@]}" "$SUITE" "$tar" ||
        die "$BASE: mmdebstrap failed"
    docker import --change 'ENV LANG=C.UTF-8' --change "LABEL dev.streamrules.standin=$want" \
        "$tar" "$BASE" >/dev/null
    rm -f "$tar"
    log "$BASE: built in $((SECONDS - start)) s"
}

# standin NAME DOCKERFILE [CONTEXT_FUNCTION INPUTS...]: build NAME from the base unless it
# is a stand-in built from the same Dockerfile, inputs and base. CONTEXT_FUNCTION prints
# the folder of a build context it assembles from INPUTS (only when a build is needed).
standin() {
    local name=$1 dockerfile=$2 context=${3:-} want ctx
    want=$(digest "$dockerfile" "${@:4}" "$(docker image inspect -f '{{.Id}}' "$BASE")")
    stale "$name" "$want" || return 0
    local args=(build -q --build-arg "BASE=$BASE" --label "dev.streamrules.standin=$want" -t "$name")
    if [ -n "$context" ]; then
        ctx=$("$context")
        docker "${args[@]}" -f "$ctx/Dockerfile" "$ctx" >"$WORK/build.log" 2>&1
    else
        docker "${args[@]}" - <"$dockerfile" >"$WORK/build.log" 2>&1
    fi || die "$name: docker build failed: $(tail -5 "$WORK/build.log")"
    log "$name: built"
}

kafka_context() { # the Kafka stand-in's build context, with the jars
    local dir=$ROOT/tools/compose/kafka ctx=$WORK/build/kafka
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp "$dir"/* "$ctx"/
    # The local broker's jars (tools/kafka/pom.xml, the parent) plus kafka-tools, from
    # Maven Central through ~/.m2 as for `streamrules broker start`.
    mvn -B -q -f "$dir/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$ctx/libs" >"$WORK/maven.log" 2>&1 ||
        die "Maven could not fetch the Kafka jars: $(tail -20 "$WORK/maven.log")"
    echo "$ctx"
}

check_prometheus() { # the stand-in must be the tag's release, or the tag would lie
    local name=$1 version=${1##*:v} built
    built=$(docker run --rm --network none "$name" --version 2>&1 | head -1)
    case "$built" in
    "prometheus, version $version "* | "prometheus, version $version+"*) ;;
    *)
        docker rmi "$name" >/dev/null
        die "$name: Debian's prometheus is not $version ($built): set the tag to its version"
        ;;
    esac
}

standins() {
    local name needed=()
    for name in python:3.11-slim "$(compose_image kafka)" "$(compose_image prometheus)"; do
        real_image "$name" || needed+=("$name")
    done
    ((${#needed[@]})) || return 0
    base_image
    for name in "${needed[@]}"; do
        case "$name" in
        python:*) standin "$name" tools/compose/python.Dockerfile ;;
        apache/kafka:*)
            # Its jars follow from the two POMs (fixed versions): no Maven run to decide.
            standin "$name" tools/compose/kafka/Dockerfile kafka_context \
                tools/compose/kafka/* tools/kafka/pom.xml
            ;;
        prom/prometheus:*)
            standin "$name" tools/compose/prometheus.Dockerfile
            check_prometheus "$name"
            ;;
        esac
    done
}

grafana_image() { # no stand-in: present or pulled, else the stack runs without Grafana
    local name
    name=$(compose_image grafana)
    docker image inspect "$name" >/dev/null 2>&1 && return 0
    if docker pull -q "$name" >/dev/null 2>&1; then
        log "$name: pulled"
        return 0
    fi
    log "$name: cannot be pulled and Debian has no Grafana: the stack runs without it"
    return 1
}

wheels() {
    # What the Dockerfile installs before the code: build-system requires, dependencies and
    # the prometheus extra, read from pyproject.toml (the Dockerfile reads the same).
    local reqs=$WORK/requirements.txt
    mkdir -p "$WORK"
    "$PYTHON" tools/compose/requirements.py pyproject.toml >"$reqs"
    rm -rf "$WORK/wheels"
    "$PYTHON" -m pip wheel -q --disable-pip-version-check -w "$WORK/wheels" -r "$reqs" >&2 ||
        die "pip wheel failed"
}

main() {
    local start=$SECONDS
    install_packages
    start_dockerd
    standins
    wheels
    local services=(kafka topics producer processor prometheus)
    grafana_image && services+=(grafana)
    log "ready in $((SECONDS - start)) s: ${services[*]}"
    if [ "${1:-}" = --print-services ]; then echo "${services[*]}"; fi
}

main "$@"
