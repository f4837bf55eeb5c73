//! TLS for the PostgreSQL store, with libpq's `sslmode` meanings.
//!
//! | `sslmode` | connection |
//! |---|---|
//! | `disable` | plain text |
//! | `allow`, `prefer` (the default) | TLS when the server offers it, without checking its certificate; plain text otherwise |
//! | `require` | TLS, without checking the certificate (fails if the server has no TLS) |
//! | `verify-ca`, `verify-full` | TLS, and the certificate must chain to a trusted root **and** name the host |
//!
//! The trusted roots are the PEM certificates of `sslrootcert=FILE` in the
//! URL, or else the system's (`rustls-native-certs`; `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` override it). `verify-ca` checks the host name too: rustls
//! has no "any name" mode, and a certificate for another host is refused.
//! The `postgres` crate does not know `verify-*`, `allow` or `sslrootcert`,
//! so [`split_url`] takes them out of the URL before it is parsed.

use std::sync::Arc;

use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// Whether the server's certificate must be verified (`verify-ca`,
    /// `verify-full`).
    pub verify: bool,
    /// `sslrootcert`: a PEM file of trusted roots.
    pub root_cert: Option<String>,
    /// The mode for the driver (`verify-*` become `require`).
    pub mode: Option<SslMode>,
}

/// Splits the TLS parameters the driver does not know out of `url`:
/// returns the URL without them, and the settings.
pub fn split_url(url: &str) -> Result<(String, TlsSettings), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsSettings::default()));
    };
    let mut kept = Vec::new();
    let mut settings = TlsSettings::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                let (mode, verify) = match value {
                    "disable" => (SslMode::Disable, false),
                    "allow" | "prefer" => (SslMode::Prefer, false),
                    "require" => (SslMode::Require, false),
                    "verify-ca" | "verify-full" => (SslMode::Require, true),
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, allow, prefer, require, \
                             verify-ca, verify-full"
                        ))
                    }
                };
                settings.mode = Some(mode);
                settings.verify = verify;
            }
            "sslrootcert" => settings.root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, settings))
}

/// `%XX` escapes decoded (and `+` kept: libpq URLs use `%20` for spaces).
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {value:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} is not UTF-8 once decoded"))
}

/// The TLS connector for `settings`.
pub fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if settings.verify {
        builder
            .with_root_certificates(roots(settings.root_cert.as_deref())?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots: the PEM file's certificates, or the system's.
fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("cannot read the certificates of sslrootcert={path}: {e}"))?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(match file {
            Some(path) => format!("sslrootcert={path} holds no usable certificate"),
            None => {
                "no trusted root certificates found on this system; name one with sslrootcert=FILE"
                    .into()
            }
        });
    }
    Ok(store)
}

/// `prefer` and `require` as libpq has them: the connection is encrypted,
/// the certificate not checked (the handshake's signatures still are).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_ssl_parameters_are_taken_out_of_the_url() {
        let (url, s) = split_url(
            "postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert!(s.verify);
        assert_eq!(s.mode, Some(SslMode::Require));
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));

        let (url, s) = split_url("postgres://u@h/db?sslmode=allow").unwrap();
        assert_eq!(
            (url.as_str(), s.mode, s.verify),
            ("postgres://u@h/db", Some(SslMode::Prefer), false)
        );
        assert_eq!(
            split_url("postgres://u@h/db").unwrap().1,
            TlsSettings::default()
        );
        assert!(split_url("postgres://u@h/db?sslmode=maybe").is_err());
        assert!(split_url("postgres://u@h/db?sslrootcert=%zz").is_err());
    }
}
