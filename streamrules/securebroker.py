"""The secured variant of the local Kafka broker: TLS, SASL/SCRAM, ACLs (outside the flow).

Not part of the event flow: like :mod:`streamrules.localkafka`, which calls it, this only
prepares a broker. ``streamrules broker start --secure`` gets:

- a client listener ``SASL_SSL`` (SCRAM-SHA-512 over TLS): the only one clients use;
- two listeners for the broker itself, ``INTERNAL`` (inter-broker) and ``CONTROLLER``
  (KRaft), both TLS with a client certificate required: only the holder of the broker's
  certificate (``CN=streamrules-broker``, a super user) can talk to them, so no port is
  left where an unauthenticated client would be let in;
- a throw-away CA and broker certificate, made with ``cryptography`` at every start (the
  CA key is never written down, so nobody else can ever get a certificate); clients need
  the CA certificate, ``<data dir>/secure/ca.pem``;
- SCRAM-SHA-512 users, created with Kafka's own tooling when the data folder is
  formatted (``kafka.tools.StorageTool format --add-scram``), with random passwords;
  ``admin`` is a super user, every other user (by default ``streamrules``) starts with no
  permission at all;
- the KRaft ``StandardAuthorizer`` on, denying what no ACL allows.

Each user gets ``<data dir>/secure/client-<user>.toml`` (mode 0600), a streamrules
configuration file with everything a client needs (``--config`` takes it). Passwords are
only ever written to those files: never printed, never logged.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamrules.errors import ConfigError

__all__ = [
    "ADMIN_USER",
    "BROKER_PRINCIPAL",
    "DEFAULT_USERS",
    "MECHANISM",
    "Credentials",
    "SecureFiles",
    "client_settings_text",
    "format_scram_args",
    "read_credentials",
    "secure_properties",
    "validate_user",
    "write_certificates",
    "write_credentials",
]

MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"
DEFAULT_USERS: tuple[str, ...] = (ADMIN_USER, "streamrules")
BROKER_CN = "streamrules-broker"
# The principal Kafka's default SSL principal builder gives the broker's own certificate.
BROKER_PRINCIPAL = f"User:CN={BROKER_CN}"
CERT_DAYS = 30
# User names end up inside StorageTool's `--add-scram 'SCRAM-SHA-512=[name=...]'`
# argument and in file names: keep them to characters that need no quoting in either.
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_user(name: str) -> str:
    if not _USER_RE.match(name):
        raise ConfigError(
            f"broker user name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True, slots=True)
class SecureFiles:
    """Where the TLS material and the users' client files of one data folder live."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.root / "broker-keystore.pem"

    @property
    def users_file(self) -> Path:
        # The users formatted into this data folder (names only; passwords are in the
        # client files).
        return self.root / "users.txt"

    def client_file(self, user: str) -> Path:
        return self.root / f"client-{user}.toml"


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never show the password, even in a traceback's locals
        return f"Credentials(user={self.user!r}, password='***')"


def _private_write(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (created so, never world-readable first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def new_credentials(users: Sequence[str]) -> list[Credentials]:
    names = list(dict.fromkeys(validate_user(u) for u in (ADMIN_USER, *users)))
    # URL-safe characters only: no quoting problem in StorageTool's argument syntax.
    return [Credentials(name, secrets.token_urlsafe(24)) for name in names]


def format_scram_args(credentials: Sequence[Credentials]) -> list[str]:
    """StorageTool ``format`` arguments that create the SCRAM users (KIP-900)."""
    args: list[str] = []
    for c in credentials:
        args += ["--add-scram", f"{MECHANISM}=[name={c.user},password={c.password}]"]
    return args


def client_settings_text(bootstrap: str, cafile: Path, credentials: Credentials) -> str:
    """A streamrules TOML configuration file for one user of the secured broker."""

    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (
        "# Written by `streamrules broker start --secure`: the connection settings of user "
        f"{credentials.user}.\n"
        "# Use it with `--config FILE` (or STREAMRULES_CONFIG=FILE). Keep it private.\n"
        f"bootstrap_servers = {q(bootstrap)}\n"
        'security_protocol = "SASL_SSL"\n'
        f"sasl_mechanism = {q(MECHANISM)}\n"
        f"sasl_username = {q(credentials.user)}\n"
        f"sasl_password = {q(credentials.password)}\n"
        f"ssl_cafile = {q(str(cafile))}\n"
    )


def write_credentials(files: SecureFiles, bootstrap: str, creds: Sequence[Credentials]) -> None:
    for c in creds:
        _private_write(
            files.client_file(c.user), client_settings_text(bootstrap, files.ca, c).encode()
        )
    _private_write(files.users_file, "".join(c.user + "\n" for c in creds).encode())


def recorded_users(files: SecureFiles) -> list[str]:
    try:
        return [u for u in files.users_file.read_text().split() if u]
    except OSError:
        return []


def read_credentials(files: SecureFiles, user: str) -> Credentials:
    """The user's credentials, from the client file written at format time."""
    path = files.client_file(user)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"no credentials for broker user {user!r} in {path}: {exc}") from None
    return Credentials(str(data["sasl_username"]), str(data["sasl_password"]))


def refresh_bootstrap(files: SecureFiles, bootstrap: str) -> None:
    """Rewrite the client files for the current port (a restart may change it)."""
    for user in recorded_users(files):
        creds = read_credentials(files, user)
        _private_write(
            files.client_file(user), client_settings_text(bootstrap, files.ca, creds).encode()
        )


def write_certificates(files: SecureFiles, host: str) -> None:
    """A new CA and a broker certificate signed by it (the CA key is not kept).

    The broker's certificate names ``host`` (and localhost) so that clients verifying the
    host name accept it; it serves both as server certificate and as the client
    certificate the broker presents to its own controller and inter-broker listeners.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise ConfigError(
            "the secured broker makes its certificates with the `cryptography` package: "
            "pip install 'streamrules[broker]'"
        ) from None

    now = datetime.now(UTC)
    start, end = now - timedelta(minutes=5), now + timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamrules local CA")])

    def usage(*, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.insert(0, x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.insert(0, x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Kafka's PEM key store: the private key (PKCS#8), then the chain, leaf first.
    _private_write(files.keystore, key_pem + cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    files.root.mkdir(parents=True, exist_ok=True)
    files.ca.write_bytes(ca_cert.public_bytes(pem))


def secure_properties(
    files: SecureFiles, host: str, port: int, internal_port: int, controller_port: int
) -> Mapping[str, str]:
    """The server.properties entries of the secured broker (over the plain ones)."""
    return {
        "listeners": (
            f"SASL_SSL://{host}:{port},INTERNAL://{host}:{internal_port},"
            f"CONTROLLER://{host}:{controller_port}"
        ),
        "advertised.listeners": f"SASL_SSL://{host}:{port},INTERNAL://{host}:{internal_port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.enabled.mechanisms": MECHANISM,
        # Server side of SCRAM: the credentials live in the cluster metadata, the login
        # module needs none.
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca),
        # The broker's own listeners accept the broker's certificate only.
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};{BROKER_PRINCIPAL}",
        "allow.everyone.if.no.acl.found": "false",
    }
