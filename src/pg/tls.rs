//! The TLS side of a PostgreSQL connection: libpq's `sslmode` ladder on
//! rustls (with ring). `prefer` and `require` encrypt without checking the
//! certificate, as libpq does; `verify-ca` checks the chain against the
//! root certificates; `verify-full` checks the host name too.
//!
//! Rule: a certificate that does not verify is a refusal, never a fallback
//! to an unchecked or plain connection; a policy whose root certificates do
//! not parse gets a connector that refuses every handshake (`connector`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;

/// libpq's `sslmode`, all five rungs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres itself knows: whether to ask for TLS at all, and
    /// whether a server without it is refused.
    pub fn wire(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Wire;
        match self {
            Self::Disable => Wire::Disable,
            Self::Prefer => Wire::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Wire::Require,
        }
    }
}

/// The certificates a server's certificate must chain to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RootCerts {
    /// None configured: only `disable`, `prefer` and `require` work.
    None,
    /// PEM text (from `sslrootcert=<file>`).
    Pem(Arc<str>),
    /// The operating system's store (`sslrootcert=system`).
    System,
}

impl fmt::Debug for RootCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Pem(_) => f.write_str("Pem(..)"),
            Self::System => f.write_str("System"),
        }
    }
}

/// How a connection to one server uses TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub roots: RootCerts,
}

impl Default for TlsPolicy {
    /// libpq's default: TLS when the server offers it, unchecked.
    fn default() -> Self {
        Self {
            mode: SslMode::Prefer,
            roots: RootCerts::None,
        }
    }
}

impl TlsPolicy {
    /// libpq's rule: `require` with root certificates checks them as
    /// `verify-ca` does.
    fn checks_chain(&self) -> bool {
        matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (self.mode == SslMode::Require && self.roots != RootCerts::None)
    }

    /// Whether the policy can be used: chain checks need root certificates
    /// that parse.
    pub fn check(&self) -> Result<(), PgError> {
        if self.checks_chain() {
            self.root_store()?;
        }
        Ok(())
    }

    /// The connector for this policy, built once per process and policy. A
    /// policy that fails `check` gets a connector whose every handshake
    /// fails with the reason, so such a server is refused, never reached
    /// unchecked.
    pub fn connector(&self) -> MakeRustlsConnect {
        static BUILT: OnceLock<Mutex<HashMap<TlsPolicy, MakeRustlsConnect>>> = OnceLock::new();
        let built = BUILT.get_or_init(Default::default);
        if let Some(found) = built.lock().expect("tls connectors").get(self) {
            return found.clone();
        }
        let connector = MakeRustlsConnect::new(self.client_config());
        built
            .lock()
            .expect("tls connectors")
            .insert(self.clone(), connector.clone());
        connector
    }

    fn client_config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let judge = if self.checks_chain() {
            let webpki = self.root_store().and_then(|roots| {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| PgError::RootCerts(e.to_string()))
            });
            match webpki {
                Ok(webpki) => Judge::Chain {
                    webpki,
                    host_name: self.mode == SslMode::VerifyFull,
                },
                Err(e) => Judge::Refuse(e.to_string()),
            }
        } else {
            Judge::Any
        };
        let verifier = Arc::new(Verifier {
            judge,
            algorithms: provider.signature_verification_algorithms,
        });
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    }

    fn root_store(&self) -> Result<RootCertStore, PgError> {
        let mut store = RootCertStore::empty();
        match &self.roots {
            RootCerts::None => {
                return Err(PgError::RootCerts(format!(
                    "sslmode={} needs sslrootcert (a CA certificate file, or `system`)",
                    self.mode.as_str()
                )))
            }
            RootCerts::Pem(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| PgError::RootCerts(e.to_string()))?;
                    store
                        .add(cert)
                        .map_err(|e| PgError::RootCerts(e.to_string()))?;
                }
            }
            RootCerts::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
            }
        }
        if store.is_empty() {
            return Err(PgError::RootCerts(
                "sslrootcert holds no certificate".into(),
            ));
        }
        Ok(store)
    }
}

/// How a server's certificate is judged.
#[derive(Debug)]
enum Judge {
    /// `verify-ca` and `verify-full`: the chain always, the name for
    /// `verify-full`.
    Chain {
        webpki: Arc<WebPkiServerVerifier>,
        host_name: bool,
    },
    /// `prefer` and `require` without root certificates: encrypted, and the
    /// handshake's signatures checked, but any certificate is taken (libpq's
    /// behaviour; the DSN asked for no more).
    Any,
    /// A policy whose root certificates do not load: every certificate and
    /// every signature is refused, with the reason.
    Refuse(String),
}

/// The verifier of every policy: the certificate as `judge` says; the
/// handshake's signatures with the provider's algorithms (as webpki checks
/// them), unless the judge refuses everything.
#[derive(Debug)]
struct Verifier {
    judge: Judge,
    algorithms: WebPkiSupportedAlgorithms,
}

/// `verify_tls12_signature` or `verify_tls13_signature`.
type SignatureCheck = fn(
    &[u8],
    &CertificateDer<'_>,
    &DigitallySignedStruct,
    &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error>;

impl Verifier {
    fn signature(
        &self,
        check: SignatureCheck,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.judge {
            Judge::Refuse(reason) => Err(refusal(reason)),
            Judge::Chain { .. } | Judge::Any => check(message, cert, dss, &self.algorithms),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (webpki, host_name) = match &self.judge {
            Judge::Chain { webpki, host_name } => (webpki, *host_name),
            Judge::Any => return Ok(ServerCertVerified::assertion()),
            Judge::Refuse(reason) => return Err(refusal(reason)),
        };
        let verified =
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verified {
            // webpki checks the name only after the chain: this error means
            // the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !host_name => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                Err(refusal(
                    "the server's certificate is not signed by a CA in sslrootcert (unknown issuer)",
                ))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(verify_tls12_signature, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(verify_tls13_signature, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A refusal in words an operator can act on; rustls shows it as
/// "other error: …".
#[derive(Debug)]
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refusal(why: &str) -> rustls::Error {
    rustls::Error::Other(rustls::OtherError(Arc::new(Refusal(why.to_string()))))
}
