"""Security without a broker: secrets never shown (repr, config errors, --help), the ACLs
each command needs, the secured broker's certificates, credentials files and settings, and
the one-line explanations of connection failures."""

from __future__ import annotations

import contextlib
import io
import ssl
import stat
from pathlib import Path

import pytest
from aiokafka.errors import SaslAuthenticationFailed
from cryptography import x509

from streamrules import acls, securebroker
from streamrules.cli import main
from streamrules.config import Settings, is_secret, load_settings
from streamrules.errors import ConfigError
from streamrules.localkafka import BrokerConfig, LocalKafka, with_free_ports
from streamrules.transport.kafka import transactional_id
from streamrules.transport.kafka_errors import _explain_connect

SECRET = "s3cret-Pa55word-for-tests"


def test_the_password_is_secret_and_not_in_repr() -> None:
    assert is_secret("sasl_password")
    assert not is_secret("sasl_username")
    s = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="app",
        sasl_password=SECRET,
    )
    assert SECRET not in repr(s) and "app" in repr(s)


@pytest.mark.parametrize(
    "toml",
    [
        "sasl_password = 12345678901\n",  # wrong type: the message must not echo it
        f'sasl_password = "{SECRET}"\n',  # given without a SASL protocol
        f'sasl_password = "{SECRET}"\nsecurity_protocol = "SASL_SSL"\n',  # no mechanism
    ],
)
def test_configuration_errors_never_echo_the_password(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings({"config": str(path)}, environ={})
    assert SECRET not in str(err.value) and "12345678901" not in str(err.value)


def test_credentials_without_a_sasl_protocol_are_an_error() -> None:
    env = {"STREAMRULES_SASL_PASSWORD": SECRET}
    with pytest.raises(ConfigError, match="sasl_password: is set but security_protocol"):
        load_settings({}, environ=env)


@pytest.mark.parametrize("command", [["run"], ["produce"], ["tail"], ["topics", "apply"]])
def test_help_shows_no_secret(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMRULES_SASL_PASSWORD", SECRET)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "--sasl-password" in out.getvalue()
    assert SECRET not in out.getvalue()


def test_a_config_error_from_the_cli_shows_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMRULES_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("STREAMRULES_SECURITY_PROTOCOL", "SASL_SSL")
    assert main(["tail"]) == 2  # no sasl_mechanism
    captured = capsys.readouterr()
    assert "configuration error" in captured.err
    assert SECRET not in captured.err + captured.out


# -- ACLs ---------------------------------------------------------------------------------
def test_run_acls_are_exactly_read_inputs_write_outputs_and_the_group() -> None:
    s = Settings(group_id="g1", orders_topic="o", incidents_topic="i", decisions_topic="d")
    assert [str(a) for a in acls.run_acls("app", s)] == [
        "ALLOW User:app READ on topic 'o'",
        "ALLOW User:app READ on topic 'i'",
        "ALLOW User:app WRITE on topic 'd'",
        "ALLOW User:app WRITE on topic 'decisions.dlq'",
        "ALLOW User:app READ on group 'g1'",
    ]
    eos = acls.run_acls("User:app", Settings(group_id="g1", exactly_once=True))
    assert eos[-1] == acls.Acl("User:app", "TRANSACTIONAL_ID", "g1-", "WRITE", "PREFIXED")
    assert str(eos[-1]) == "ALLOW User:app WRITE on transactional id 'g1-*'"


def test_the_transactional_id_prefix_is_that_of_the_transport() -> None:
    for tps in ([], [("orders", 0)], [("orders", 3), ("incidents", 1)]):
        assert transactional_id("grp", tps).startswith(acls.transactional_id_prefix("grp"))


def test_produce_and_tail_acls_and_principals() -> None:
    s = Settings()
    assert [(a.resource_name, a.operation) for a in acls.acls_for("produce", "f", s)] == [
        ("orders", "WRITE"),
        ("incidents", "WRITE"),
    ]
    assert [(a.resource_name, a.operation) for a in acls.acls_for("tail", "r", s)] == [
        ("decisions", "READ")
    ]
    assert acls.normalize_principal(" User:x ") == "User:x"
    with pytest.raises(ConfigError, match="User:NAME"):
        acls.normalize_principal("User:")
    with pytest.raises(ConfigError, match="--acls-for"):
        acls.acls_for("admin", "x", s)


# -- the secured broker's material ------------------------------------------------------
def test_certificates_chain_to_the_ca_and_name_the_host(tmp_path: Path) -> None:
    files = securebroker.SecureFiles(tmp_path / "secure")
    securebroker.write_certificates(files, "127.0.0.1")
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    pem = files.keystore.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    leaf = x509.load_pem_x509_certificates(pem)[0]
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.subject.rfc4514_string() == "CN=streamrules-broker"
    assert stat.S_IMODE(files.keystore.stat().st_mode) == 0o600
    ssl.create_default_context(cafile=str(files.ca))  # a CA file Python's ssl accepts


def test_client_files_are_private_streamrules_configs(tmp_path: Path) -> None:
    files = securebroker.SecureFiles(tmp_path / "secure")
    securebroker.write_certificates(files, "127.0.0.1")
    creds = securebroker.new_credentials(["app"])
    assert [c.user for c in creds] == ["admin", "app"]
    assert all(c.password not in repr(c) for c in creds)
    securebroker.write_credentials(files, "127.0.0.1:19394", creds)
    path = files.client_file("app")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    s = load_settings({"config": str(path)}, environ={})
    assert (s.bootstrap, s.security_protocol, s.sasl_mechanism) == (
        "127.0.0.1:19394",
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert s.sasl_password == creds[1].password and s.ssl_cafile == str(files.ca)
    assert securebroker.read_credentials(files, "app") == creds[1]
    assert securebroker.recorded_users(files) == ["admin", "app"]
    args = securebroker.format_scram_args(creds[:1])
    assert args == ["--add-scram", f"SCRAM-SHA-512=[name=admin,password={creds[0].password}]"]


def test_secure_broker_config_ports_and_properties(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path, port=19394, controller_port=19395, secure=True)
    assert config.internal_port == 19396
    props = LocalKafka(config).server_properties()
    assert props["listeners"].startswith("SASL_SSL://127.0.0.1:19394,")
    assert props["advertised.listeners"].split(",")[0] == "SASL_SSL://127.0.0.1:19394"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:admin;User:CN=streamrules-broker"
    assert props["listener.security.protocol.map"] == (
        "SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    )
    free = with_free_ports(config)
    assert len({free.port, free.controller_port, free.internal_port}) == 3
    with pytest.raises(ConfigError, match="ports must differ"):
        BrokerConfig(
            data_dir=tmp_path, port=19394, controller_port=19395, internal_port=19395, secure=True
        )
    with pytest.raises(ConfigError, match="user name"):
        BrokerConfig(data_dir=tmp_path, secure=True, users=("admin", "bad name"))


# -- one line naming the cause ------------------------------------------------------------
def test_connection_failures_are_explained_without_the_password() -> None:
    options = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "app",
        "sasl_plain_password": SECRET,
    }
    sasl = _explain_connect(SaslAuthenticationFailed("bad"), "h", 1, options, None)
    assert sasl is not None and "user 'app'" in sasl and "wrong user name or password" in sasl
    assert SECRET not in sasl
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    tls = _explain_connect(verify, "h", 1, options, "/x/ca.pem")
    assert tls is not None and "not trusted" in tls and "ssl_cafile /x/ca.pem" in tls
    refused = _explain_connect(ConnectionRefusedError(111, "refused"), "h", 1, options, None)
    assert refused == "nothing listens at h:1 (connection refused)"
