"""A real SMTP server on loopback for the e-mail channel's tests (aiosmtpd).

Two listeners share one certificate, issued for 127.0.0.1 and localhost by a throwaway CA
(trustme); the CA is written to <dir>/ca.pem for clients to trust:

- STARTTLS on --starttls-port: plain at first, STARTTLS required before anything else, then
  AUTH (PLAIN or LOGIN) required;
- implicit TLS (SMTPS) on --tls-port: TLS from the first byte, then AUTH required.

Only the user `vigil` with the password in $VIGIL_TEST_SMTP_PASSWORD is accepted. A recipient
whose local part starts with `reject` is refused with 550. Every accepted message is written to
<dir>/mail/<n>.json: envelope, raw message, its headers and parts as Python's MIME parser reads
them, the TLS version and cipher in use, the user.

    python smtp_server.py --dir DIR --starttls-port 2587 --tls-port 2465
"""

import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import threading

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "vigil"


class Handler:
    def __init__(self, mail_dir, listener):
        self.mail_dir = mail_dir
        self.listener = listener

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].startswith("reject"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object")
        # The message as Python's own MIME parser reads it.
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [
            {"type": part.get_content_type(), "body": part.get_content()}
            for part in message.walk()
            if not part.is_multipart()
        ]
        record = {
            "content_type": message.get_content_type(),
            "subject": str(message["subject"]),
            "from": str(message["from"]),
            "to": str(message["to"]),
            "message_id": str(message["message-id"]),
            "parts": parts,
            "listener": self.listener,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls_version": tls.version() if tls else None,
            "cipher": tls.cipher()[0] if tls else None,
            "user": session.auth_data.login.decode() if session.authenticated else None,
        }
        name = f"{os.getpid()}-{threading.get_ident()}-{id(envelope)}.json"
        tmp = os.path.join(self.mail_dir, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(self.mail_dir, name))
        return "250 Message accepted for delivery"


def authenticator(password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USER
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--starttls-port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    args = parser.parse_args()
    password = os.environ["VIGIL_TEST_SMTP_PASSWORD"]

    mail_dir = os.path.join(args.dir, "mail")
    os.makedirs(mail_dir, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(os.path.join(args.dir, "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    auth = authenticator(password)
    starttls = Controller(
        Handler(mail_dir, "starttls"),
        hostname="127.0.0.1",
        port=args.starttls_port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=auth,
    )
    implicit = Controller(
        Handler(mail_dir, "tls"),
        hostname="127.0.0.1",
        port=args.tls_port,
        ssl_context=context,
        auth_required=True,
        # The whole connection is TLS; aiosmtpd only tracks STARTTLS.
        auth_require_tls=False,
        authenticator=auth,
    )
    starttls.start()
    implicit.start()
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("ok\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    starttls.stop()
    implicit.stop()


if __name__ == "__main__":
    main()
