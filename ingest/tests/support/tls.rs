//! A TLS acceptor for the test servers, with a self-signed certificate made from `params`.

#![allow(dead_code, reason = "each test crate uses part of it")]

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

pub(crate) fn acceptor(params: rcgen::CertificateParams) -> TlsAcceptor {
    TlsAcceptor::from(Arc::new(server_config(params)))
}

/// The server configuration behind [`acceptor`].
pub(crate) fn server_config(params: rcgen::CertificateParams) -> rustls::ServerConfig {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap()
}
