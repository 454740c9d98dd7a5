"""A test CA and server certificates it signs (python3-cryptography), for the outbound TLS tests:
make_ca(tmp) -> (certificate, key, ca.pem path); server_cert(tmp, ca, label, dns_name,
expired=False, more_names=()) -> (label.pem, label.key), the name as CN and subjectAltName (with
more_names)."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Estafette Test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(tmp, "ca.pem")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def server_cert(tmp, ca, label, dns_name, expired=False, more_names=()):
    ca_cert, ca_key, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    before, after = ((now - datetime.timedelta(days=10), now - datetime.timedelta(days=1))
                     if expired else (now - datetime.timedelta(days=1),
                                      now + datetime.timedelta(days=30)))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(before).not_valid_after(after)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in (dns_name,) + tuple(more_names)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem, key_path = os.path.join(tmp, label + ".pem"), os.path.join(tmp, label + ".key")
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(pem_key(key))
    os.chmod(key_path, 0o644)  # Postfix reads it as root anyway; the test's tmp is private
    return pem, key_path
