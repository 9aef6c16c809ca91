//! The HTTPS side: a rustls acceptor built from PEM files, swappable at run time so that
//! certificates can be renewed with SIGHUP without dropping connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto};

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read TLS {what} {}: {e}", path.display()))
}

/// Builds an acceptor from a PEM certificate chain and private key.
pub fn load_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let cert_pem = read(cert, "certificate")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("invalid TLS certificate {}: no PEM certificate found", cert.display()));
    }
    let key_pem = read(key, "key")?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("invalid TLS key {}: {e}", key.display()))?;
    // The provider is named explicitly, so the process needs no default one installed.
    let mut config = ServerConfig::builder_with_provider(Arc::new(crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            format!("TLS certificate and key do not fit together ({}, {}): {e}", cert.display(), key.display())
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The current acceptor and the files it came from.
pub struct ReloadableAcceptor {
    current: RwLock<TlsAcceptor>,
    cert: PathBuf,
    key: PathBuf,
}

impl ReloadableAcceptor {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        Ok(ReloadableAcceptor { current: RwLock::new(load_acceptor(cert, key)?), cert: cert.into(), key: key.into() })
    }

    pub fn get(&self) -> TlsAcceptor {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the files; on failure the previous certificate stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = load_acceptor(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}
