//! Reaching the team database: the URL (with libpq's `sslmode` values and `sslrootcert`), the
//! password (URL, `PGPASSWORD`, `~/.pgpass`, in libpq's order), TLS through rustls, and errors
//! that say in one line what went wrong without ever showing the password.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::SyncError;

/// libpq's `sslmode`, all of it (rust-postgres knows the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    /// The server's certificate must chain to the CA file.
    VerifyCa,
    /// ... and name the host connected to.
    VerifyFull,
}

impl FromStr for TlsMode {
    type Err = SyncError;
    fn from_str(s: &str) -> Result<TlsMode, SyncError> {
        Ok(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(SyncError::Config(format!("sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full")))
            }
        })
    }
}

/// Where and how to connect: everything but the password is shown in messages.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    /// The URL with its password masked, for messages.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.shown).field("tls", &self.tls).finish()
    }
}

/// The URL with any password replaced by `***` (in the user part and in a `password=`
/// parameter), for messages and `config show`.
pub fn mask_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((user, hosts)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}:***@{hosts}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl Target {
    /// Resolves a URL with the `[sync]` section's TLS defaults. The URL's own `sslmode` and
    /// `sslrootcert` win.
    pub fn new(url: &str, sslmode: Option<&str>, ca_file: Option<&Path>) -> Result<Target, SyncError> {
        let shown = mask_url(url);
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(SyncError::Config(format!("{shown} is not a postgresql:// URL")));
        }
        // rust-postgres refuses the sslmode values it does not implement, so take them out.
        let (head, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut root) = (sslmode.map(str::to_owned), ca_file.map(Path::to_path_buf));
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.to_owned()),
                Some(("sslrootcert", v)) => root = Some(PathBuf::from(percent_decode(v))),
                _ => rest.push(kv),
            }
        }
        let tls: TlsMode = mode.as_deref().unwrap_or("prefer").parse()?;
        let plain = if rest.is_empty() { head.to_owned() } else { format!("{head}?{}", rest.join("&")) };
        let mut config = postgres::Config::from_str(&plain).map_err(|e| SyncError::Config(format!("{shown}: {e}")))?;
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_hosts().is_empty() {
            config.host(std::env::var("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if config.get_password().is_none() {
            if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()).or_else(|| pgpass(&config)) {
                config.password(p);
            }
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A server that stops answering mid-push (a dropped route, a frozen VM) must not hold
        // the pushing thread forever: unacknowledged data fails the connection after 60 s, and
        // an idle one is probed.
        config.tcp_user_timeout(Duration::from_secs(60));
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        // And a statement stuck on the server (a lock another push holds, a stalled disk)
        // fails the push after two minutes instead of stopping every later one; a pusher that
        // stops mid-transaction (SIGSTOP, a laptop lid) has its transaction and advisory lock
        // ended by the server after a minute.
        let ours = "-c statement_timeout=120s -c idle_in_transaction_session_timeout=60s";
        let options = match config.get_options() {
            Some(o) if o.contains("statement_timeout") => o.to_owned(),
            Some(o) => format!("{o} {ours}"),
            None => ours.to_owned(),
        };
        config.options(&options);
        config.application_name("chronicle");
        Ok(Target { config, tls, ca_file: root, shown })
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.tls
    }

    /// Connects and reports any failure in one line.
    pub fn connect(&self) -> Result<postgres::Client, SyncError> {
        let result = match self.tls {
            TlsMode::Disable => self.config.connect(postgres::NoTls),
            mode => self.config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(self.rustls(mode)?)),
        };
        result.map_err(|e| SyncError::from_pg(&self.shown, &e))
    }

    fn rustls(&self, mode: TlsMode) -> Result<rustls::ClientConfig, SyncError> {
        // ring rather than aws-lc-rs (whose C build needs cmake and adds a minute to every
        // clean build); PostgreSQL servers do not offer post-quantum key exchange anyway.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| SyncError::Tls(e.to_string()))?;
        let config = match mode {
            // libpq's prefer and require encrypt without checking who answers.
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(Unverified(provider))).with_no_client_auth()
            }
            TlsMode::VerifyCa | TlsMode::VerifyFull => {
                let file = match &self.ca_file {
                    Some(f) => f.clone(),
                    None => directories::BaseDirs::new()
                        .map(|d| d.home_dir().join(".postgresql").join("root.crt"))
                        .ok_or_else(|| SyncError::Tls("verify-full needs a CA file: set [sync] ca_file".into()))?,
                };
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(&file)
                    .map_err(|e| SyncError::Tls(format!("cannot read the CA file {}: {e}", file.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|e| SyncError::Tls(format!("CA file {}: {e}", file.display())))?;
                    roots.add(cert).map_err(|e| SyncError::Tls(format!("CA file {}: {e}", file.display())))?;
                }
                if roots.is_empty() {
                    return Err(SyncError::Tls(format!("CA file {} holds no certificate", file.display())));
                }
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| SyncError::Tls(e.to_string()))?;
                if mode == TlsMode::VerifyFull {
                    builder.with_webpki_verifier(verifier).with_no_client_auth()
                } else {
                    builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(verifier))).with_no_client_auth()
                }
            }
        };
        Ok(config)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password `~/.pgpass` (or `PGPASSFILE`) gives this host, port, database and user, as
/// libpq reads it: the first matching line wins, `*` matches anything, `\:` and `\\` escape,
/// and a file that others can read is ignored.
fn pgpass(config: &postgres::Config) -> Option<String> {
    let file =
        std::env::var_os("PGPASSFILE").map(PathBuf::from).or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".pgpass")))?;
    let text = std::fs::read_to_string(&file).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!("{} is readable by others (mode {:o}); ignored, as libpq does: chmod 600 it", file.display(), mode & 0o777);
            return None;
        }
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, [&host, &port, db, user])
}

fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Some(fields.pop().unwrap_or_default());
        }
    }
    None
}

/// libpq's `require`: encrypted, the handshake's signatures checked, the certificate not.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the chain must lead to the CA file; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("postgresql://ann:s3cret@db.example:5432/team"), "postgresql://ann:***@db.example:5432/team");
        assert_eq!(
            mask_url("postgres://ann@db/team?password=s3cret&sslmode=require"),
            "postgres://ann@db/team?password=***&sslmode=require"
        );
        assert_eq!(mask_url("postgresql://db/team"), "postgresql://db/team");
        assert!(!mask_url("postgresql://a:p@ss:word@h/d").contains("word"));
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:5432:*:ann:nope\n*:5432:team:ann:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(pgpass_lookup(text, ["db", "5432", "team", "ann"]).as_deref(), Some("pa:ss"));
        assert_eq!(pgpass_lookup(text, ["db", "5433", "team", "ann"]).as_deref(), Some("fallback"));
        assert_eq!(pgpass_lookup("h:1:d:u\n", ["h", "1", "d", "u"]), None);
    }

    #[test]
    fn sslmodes_beyond_rust_postgres_are_understood() {
        let t = Target::new("postgresql://u@h/d?sslmode=verify-full&sslrootcert=/tmp/ca.pem", None, None).unwrap();
        assert_eq!(t.tls_mode(), TlsMode::VerifyFull);
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/tmp/ca.pem")));
        assert_eq!(Target::new("postgresql://u@h/d", Some("disable"), None).unwrap().tls_mode(), TlsMode::Disable);
        assert!(Target::new("postgresql://u@h/d?sslmode=sometimes", None, None).is_err());
        assert!(Target::new("mysql://u@h/d", None, None).is_err());
    }
}
