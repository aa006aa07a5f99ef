//! TLS for the gRPC port, read from PEM files.

use std::path::{Path, PathBuf};

use clap::Args;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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
    /// The server's TLS settings, read from the files; `None` for plaintext.
    pub(super) fn server_config(&self) -> Result<Option<ServerTlsConfig>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            if self.tls_client_ca.is_some() {
                return Err(ConfigError(
                    "ROSTER_TLS_CLIENT_CA needs ROSTER_TLS_CERT and ROSTER_TLS_KEY".into(),
                ));
            }
            return Ok(None);
        };
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read(cert, "certificate")?,
            read(key, "key")?,
        ));
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(Some(config))
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        ConfigError(format!(
            "cannot read the TLS {what} {}: {err}",
            path.display()
        ))
    })
}
