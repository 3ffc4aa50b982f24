//! TLS on the public listener for tests (`tests/tls.rs`, `tests/attack_h2.rs`,
//! `tests/browser_h2.rs`): a throwaway CA and leaf certificate, a rustls
//! client trusting only that CA, and a gateway stack serving HTTPS.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::gateway::Stack;

/// Writes `cert.pem` (leaf, then CA) and `key.pem` for 127.0.0.1 and
/// localhost into `dir`; returns the CA certificate (PEM).
pub fn make_certificates(dir: &Path) -> String {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "steemgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    ca.pem()
}

/// A rustls client configuration trusting only `ca_pem`.
pub fn tls_config(ca_pem: &str) -> rustls::ClientConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A gateway serving HTTPS with a fresh CA, its `tls:` line extended by
/// `tls_extra` (e.g. `", http2: off"`) and the whole config passed through
/// `edit`; returns it with the CA (PEM) and the directory holding the files.
pub fn tls_stack_with(
    tls_extra: &str,
    seeded: bool,
    edit: impl FnOnce(String) -> String,
) -> (Stack, String, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let ca = make_certificates(certs.path());
    let tls_line = format!(
        "tls: {{cert: \"{}\", key: \"{}\"{tls_extra}}}\n",
        certs.path().join("cert.pem").display(),
        certs.path().join("key.pem").display()
    );
    let edit = move |config: String| {
        edit(config.replacen("threads: 2\n", &format!("threads: 2\n{tls_line}"), 1))
    };
    let stack = if seeded {
        Stack::start_seeded_with(edit)
    } else {
        Stack::start_with(edit)
    };
    (stack, ca, certs)
}

/// [`tls_stack_with`] with the default `tls:` settings.
pub fn tls_stack() -> (Stack, String, tempfile::TempDir) {
    tls_stack_with("", false, |config| config)
}
