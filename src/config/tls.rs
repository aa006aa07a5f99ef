//! TLS for the gRPC port, read from PEM files.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use clap::Args;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};

use super::ConfigError;

/// TLS for the gRPC port. Without a certificate, roster serves plaintext
/// (fine on loopback or behind a TLS-terminating proxy).
#[derive(Debug, Clone, Args, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    #[arg(long, env = "ROSTER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server.
    #[arg(long, env = "ROSTER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): when set, clients must present a certificate
    /// signed by one of them (mutual TLS).
    #[arg(long, env = "ROSTER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// The server's TLS acceptor, from the files; `None` for plaintext.
    ///
    /// roster accepts TLS itself (`transport::listener`) rather than through
    /// tonic, so that one deadline covers the whole handshake. Offered as
    /// tonic offers it: HTTP/2 by ALPN, and HTTP/1.1 when the client does
    /// not negotiate (gRPC-Web and Connect).
    pub(super) fn server_config(&self) -> Result<Option<TlsAcceptor>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            if self.tls_client_ca.is_some() {
                return Err(ConfigError(
                    "ROSTER_TLS_CLIENT_CA needs ROSTER_TLS_CERT and ROSTER_TLS_KEY".into(),
                ));
            }
            return Ok(None);
        };
        let chain = certificates(cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(&read(key, "key")?).map_err(|err| {
            ConfigError(format!(
                "the TLS key {} is not usable: {err}",
                key.display()
            ))
        })?;
        let builder = ServerConfig::builder();
        let builder = match &self.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(certificates(ca, "client CA")?);
                let verifier = WebPkiClientVerifier::builder(roots.into())
                    .build()
                    .map_err(|err| {
                        ConfigError(format!(
                            "the TLS client CA {} is not usable: {err}",
                            ca.display()
                        ))
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|err| {
            ConfigError(format!(
                "the TLS certificate {} and key do not go together: {err}",
                cert.display()
            ))
        })?;
        config.alpn_protocols.push(b"h2".to_vec());
        Ok(Some(TlsAcceptor::from(Arc::new(config))))
    }
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain = CertificateDer::pem_slice_iter(&read(path, what)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            ConfigError(format!(
                "the TLS {what} {} is not PEM: {err}",
                path.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(ConfigError(format!(
            "the TLS {what} {} holds no certificate",
            path.display()
        )));
    }
    Ok(chain)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        ConfigError(format!(
            "cannot read the TLS {what} {}: {err}",
            path.display()
        ))
    })
}
