//! TLS for PostgreSQL with libpq's `sslmode` meanings, which `tokio-postgres` only partly knows:
//! `disable`, `prefer` (the default) and `require` encrypt without checking the certificate,
//! unless `sslrootcert` is given; `verify-ca` checks the chain; `verify-full` also checks the host
//! name. The `ssl*` parameters are taken out of the connection string here and turned into a
//! connector.

use native_tls::{Certificate, Identity, TlsConnector};
use postgres::config::SslMode;
use postgres_native_tls::MakeTlsConnector;

use crate::error::{DriverError, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Encrypt, trust any certificate.
    None,
    /// Check the certificate chain, not the host name.
    Chain,
    /// Check the chain and the host name.
    Full,
}

/// The TLS parameters of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParameters {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl TlsParameters {
    /// The parameters as libpq environment variables, for PostgreSQL's own client programs.
    pub(crate) fn as_environment(&self) -> Vec<(&'static str, String)> {
        [
            ("PGSSLMODE", &self.sslmode),
            ("PGSSLROOTCERT", &self.sslrootcert),
            ("PGSSLCERT", &self.sslcert),
            ("PGSSLKEY", &self.sslkey),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }
}

/// Splits the `ssl*` parameters out of a URL or key=value connection string.
pub(crate) fn split_tls_parameters(connection: &str) -> (String, TlsParameters) {
    let mut parameters = TlsParameters::default();
    let mut take = |key: &str, value: String| match key {
        "sslmode" => parameters.sslmode = Some(value),
        "sslrootcert" => parameters.sslrootcert = Some(value),
        "sslcert" => parameters.sslcert = Some(value),
        "sslkey" => parameters.sslkey = Some(value),
        _ => {}
    };
    if connection.contains("://") {
        let Some((base, query)) = connection.split_once('?') else {
            return (connection.to_owned(), parameters);
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_KEYS.contains(&key) {
                take(key, percent_decode(value));
            } else {
                kept.push(pair);
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rebuilt, parameters)
    } else {
        let mut kept = Vec::new();
        for (key, raw, value) in key_value_pairs(connection) {
            if TLS_KEYS.contains(&key.as_str()) {
                take(&key, value);
            } else {
                kept.push(raw);
            }
        }
        (kept.join(" "), parameters)
    }
}

/// How a connection is secured.
#[derive(Clone)]
pub(crate) enum Connector {
    /// `sslmode=disable`.
    Plain,
    /// Encryption without certificate checks (`prefer`, `require`): rustls with a verifier that
    /// accepts the server's certificate, as libpq does in these modes. It loads no certificate
    /// store, which saves every command the tens of milliseconds OpenSSL spends parsing the
    /// system bundle.
    Encrypting(tokio_postgres_rustls::MakeRustlsConnect),
    /// Certificate checks (`verify-ca`, `verify-full`, an `sslrootcert`) or a client
    /// certificate: OpenSSL through native-tls, so verification behaves exactly as libpq's.
    Verifying(MakeTlsConnector),
}

impl Connector {
    pub fn connect(&self, config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
        match self {
            Connector::Plain => config.connect(postgres::NoTls),
            Connector::Encrypting(tls) => config.connect(tls.clone()),
            Connector::Verifying(tls) => config.connect(tls.clone()),
        }
    }

    pub fn cancel(&self, token: &postgres::CancelToken) {
        let _ = match self {
            Connector::Plain => token.cancel_query(postgres::NoTls),
            Connector::Encrypting(tls) => token.cancel_query(tls.clone()),
            Connector::Verifying(tls) => token.cancel_query(tls.clone()),
        };
    }
}

/// The `SslMode` to configure and the connector to use.
pub(crate) fn connector(parameters: &TlsParameters) -> Result<(SslMode, Connector), DriverError> {
    let (mode, verification) = match parameters.sslmode.as_deref().unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Verification::None),
        "allow" | "prefer" => (SslMode::Prefer, Verification::None),
        "require" => (SslMode::Require, Verification::None),
        "verify-ca" => (SslMode::Require, Verification::Chain),
        "verify-full" => (SslMode::Require, Verification::Full),
        other => {
            return Err(DriverError::new(
                ErrorKind::InvalidUrl,
                format!("unknown sslmode `{other}`"),
            )
            .with_hint("use disable, allow, prefer, require, verify-ca or verify-full"));
        }
    };
    // libpq: with a root certificate, `require` verifies the chain like `verify-ca`.
    let verification = match (verification, &parameters.sslrootcert) {
        (Verification::None, Some(_)) if mode == SslMode::Require => Verification::Chain,
        (verification, _) => verification,
    };
    let client_certificate = parameters.sslcert.is_some() || parameters.sslkey.is_some();
    if mode == SslMode::Disable {
        return Ok((mode, Connector::Plain));
    }
    if verification == Verification::None && parameters.sslrootcert.is_none() && !client_certificate
    {
        return Ok((mode, Connector::Encrypting(encrypting_connector()?)));
    }
    Ok((
        mode,
        Connector::Verifying(verifying_connector(parameters, verification)?),
    ))
}

fn encrypting_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, DriverError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::new(ErrorKind::Connect, format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAnyCertificate { provider }))
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Accepts the server's certificate without checking who issued it or for which name, while
/// still checking the handshake signatures made with it: libpq's `sslmode=require`.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn verifying_connector(
    parameters: &TlsParameters,
    verification: Verification,
) -> Result<MakeTlsConnector, DriverError> {
    let tls_error = |message: String| DriverError::new(ErrorKind::Connect, message);
    let mut builder = TlsConnector::builder();
    match verification {
        Verification::None => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        Verification::Chain => {
            builder.danger_accept_invalid_hostnames(true);
        }
        Verification::Full => {}
    }
    if let Some(path) = &parameters.sslrootcert {
        let pem = std::fs::read(path)
            .map_err(|e| tls_error(format!("cannot read sslrootcert {path}: {e}")))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| tls_error(format!("sslrootcert {path} is not a PEM certificate: {e}")))?;
        builder.add_root_certificate(certificate);
    }
    match (&parameters.sslcert, &parameters.sslkey) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert)
                .map_err(|e| tls_error(format!("cannot read sslcert {cert}: {e}")))?;
            let key_pem = std::fs::read(key)
                .map_err(|e| tls_error(format!("cannot read sslkey {key}: {e}")))?;
            let identity = Identity::from_pkcs8(&cert_pem, &key_pem).map_err(|e| {
                tls_error(format!(
                    "sslcert/sslkey cannot be used as a client identity: {e}"
                ))
            })?;
            builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(DriverError::new(
                ErrorKind::InvalidUrl,
                "sslcert and sslkey must be given together",
            ));
        }
    }
    let connector = builder
        .build()
        .map_err(|e| tls_error(format!("cannot set up TLS: {e}")))?;
    Ok(MakeTlsConnector::new(connector))
}

/// `key=value` pairs of a libpq connection string, with each pair's raw text and its unquoted
/// value.
fn key_value_pairs(text: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|&(_, c)| c == '=') {
            chars.next();
            while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_some_and(|&(_, c)| c == '\'') {
                chars.next();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '\'' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        pairs.push((key, text[start..end].trim_end().to_owned(), value));
    }
    pairs
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tls_parameters_from_urls() {
        let (rest, parameters) = split_tls_parameters(
            "postgres://u@h/d?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert_eq!(parameters.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(parameters.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let (rest, parameters) = split_tls_parameters("postgres://u@h/d?sslmode=disable");
        assert_eq!(rest, "postgres://u@h/d");
        assert_eq!(parameters.sslmode.as_deref(), Some("disable"));
    }

    #[test]
    fn splits_tls_parameters_from_key_value_strings() {
        let (rest, parameters) =
            split_tls_parameters("host=h sslmode = 'verify-ca' password='a b' dbname=d");
        assert_eq!(rest, "host=h password='a b' dbname=d");
        assert_eq!(parameters.sslmode.as_deref(), Some("verify-ca"));
    }

    #[test]
    fn rejects_unknown_modes() {
        let parameters = TlsParameters {
            sslmode: Some("sometimes".into()),
            ..TlsParameters::default()
        };
        assert!(connector(&parameters).is_err());
    }
}
