//! TLS mode: a throwaway certificate authority and a server certificate,
//! made at run time, so that a client can reach the emulator over
//! `https://127.0.0.1:PORT` while trusting nothing but that CA (the plugin's
//! `ca_file`).
//!
//! ```no_run
//! use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec, TlsIdentity};
//!
//! let tls = TlsIdentity::generate()?;
//! let ca_file = tls.write_ca(std::env::temp_dir())?; // give this to the client
//! let emulator = Emulator::start(EmulatorConfig {
//!     streams: vec![StreamSpec::new("logs")],
//!     tls: Some(tls),
//!     ..Default::default()
//! })?;
//! assert!(emulator.endpoint().starts_with("https://127.0.0.1:"));
//! # let _ = ca_file;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The CA is self-signed with `CA:TRUE` (key usages `keyCertSign`,
//! `cRLSign`) and a subject name unique to it; the server certificate is signed by it for the subject
//! alternative names [`DEFAULT_SERVER_NAMES`] (`localhost`, `127.0.0.1`,
//! `::1`) with extended key usage `serverAuth`. Keys are ECDSA P-256. Both
//! are valid from 1975 to 4096 (rcgen's defaults), so clock skew never
//! matters.
//!
//! The server side is rustls on the aws-lc-rs provider (the one the AWS SDK
//! uses), handed to rustls explicitly: no process-wide default provider is
//! installed. It offers TLS 1.3 and 1.2 and ALPN `http/1.1` only (the
//! emulator speaks HTTP/1.1).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Subject alternative names of the server certificate made by
/// [`TlsIdentity::generate`].
pub const DEFAULT_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// File name [`TlsIdentity::write_ca`] writes.
pub const CA_FILE_NAME: &str = "firehose-emulator-ca.pem";

/// A throwaway CA and a server certificate (with its key) signed by it.
///
/// Cheap to clone (shared). Equality compares the certificates. `Debug`
/// never prints the private key.
#[derive(Clone)]
pub struct TlsIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: Vec<u8>,
    server_names: Vec<String>,
}

fn other(what: &str, e: impl fmt::Display) -> io::Error {
    io::Error::other(format!("firehose-emulator TLS: {what}: {e}"))
}

impl TlsIdentity {
    /// A fresh CA and a server certificate for [`DEFAULT_SERVER_NAMES`].
    pub fn generate() -> io::Result<TlsIdentity> {
        Self::generate_for(DEFAULT_SERVER_NAMES)
    }

    /// A fresh CA and a server certificate for the given names (DNS names
    /// or IP addresses, as text).
    pub fn generate_for<I, S>(server_names: I) -> io::Result<TlsIdentity>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let server_names: Vec<String> = server_names.into_iter().map(Into::into).collect();

        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| other("CA parameters", e))?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        // A distinct name per CA, so that two of them never look like one
        // issuer to a verifier.
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("firehose-emulator test CA {:016x}", fastrand::u64(..)),
        );
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "firehose-fanout tests");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(|e| other("CA key", e))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| other("CA certificate", e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(server_names.clone())
            .map_err(|e| other("server certificate parameters", e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "firehose-emulator");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(|e| other("server key", e))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| other("server certificate", e))?;

        Ok(TlsIdentity {
            inner: Arc::new(Inner {
                ca_pem: ca_cert.pem(),
                ca_der: ca_cert.der().clone(),
                cert_pem: cert.pem(),
                cert_der: cert.der().clone(),
                key_pem: key.serialize_pem(),
                key_der: key.serialize_der(),
                server_names,
            }),
        })
    }

    /// The CA certificate, PEM: what a client should trust (`ca_file`).
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.inner.ca_der
    }

    /// The server certificate (the leaf only), PEM.
    pub fn cert_pem(&self) -> &str {
        &self.inner.cert_pem
    }

    /// The server certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.inner.cert_der
    }

    /// The server's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.inner.key_pem
    }

    /// The names the server certificate is valid for.
    pub fn server_names(&self) -> &[String] {
        &self.inner.server_names
    }

    /// Writes the CA certificate (PEM) to `dir/`[`CA_FILE_NAME`] (creating
    /// `dir` if needed) and returns that path, ready for `ca_file`.
    pub fn write_ca(&self, dir: impl AsRef<Path>) -> io::Result<PathBuf> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let path = dir.join(CA_FILE_NAME);
        std::fs::write(&path, self.ca_pem())?;
        Ok(path)
    }

    /// The rustls server configuration: this certificate and key, the
    /// aws-lc-rs provider (explicitly, not the process default), TLS 1.2 and
    /// 1.3, ALPN `http/1.1`.
    pub(crate) fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.inner.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| other("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(vec![self.inner.cert_der.clone()], key)
            .map_err(|e| other("server certificate", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A TLS acceptor for the server.
    pub(crate) fn acceptor(&self) -> io::Result<tokio_rustls::TlsAcceptor> {
        Ok(tokio_rustls::TlsAcceptor::from(self.server_config()?))
    }
}

impl PartialEq for TlsIdentity {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.ca_der == other.inner.ca_der
                && self.inner.cert_der == other.inner.cert_der)
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("server_names", &self.inner.server_names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_server_certificate() {
        let tls = TlsIdentity::generate().unwrap();
        assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(tls.ca_der(), tls.cert_der());
        assert_eq!(tls.server_names(), DEFAULT_SERVER_NAMES);
        assert!(!format!("{tls:?}").contains("PRIVATE"));
        assert_eq!(tls, tls.clone());
        assert_ne!(tls, TlsIdentity::generate().unwrap());
        tls.server_config().unwrap();

        let dir = std::env::temp_dir().join(format!(
            "firehose-emulator-tls-unit-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let path = tls.write_ca(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), tls.ca_pem());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(TlsIdentity::generate_for(["b\u{fc}cher.example"]).is_err());
    }
}
