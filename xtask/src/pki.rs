//! Test certificates for the servers' TLS listeners, made at `broker start` (rcgen): a CA,
//! the servers' certificate, a client certificate the servers accept, and a second CA with
//! a client certificate of its own that nobody here trusts.

use std::fs;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use crate::Result;

/// The files written into the TLS folder (PEM): what the servers present and trust, what
/// a client may present, and the foreign pair the servers must refuse.
pub(crate) const CA: &str = "ca.pem";
pub(crate) const SERVER_CERT: &str = "server.pem";
pub(crate) const SERVER_KEY: &str = "server.key";

/// Writes the CA, the server pair (for `localhost` and 127.0.0.1), `client.pem` /
/// `client.key`, and `other-ca.pem` / `other-client.pem` / `other-client.key` into `dir`.
pub(crate) fn generate(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let ours = authority("rmq test CA")?;
    let theirs = authority("some other CA")?;
    let files = [
        (&ours, SERVER_CERT, &["localhost", "127.0.0.1"][..], false),
        (&ours, "client.pem", &["rmq-client"][..], true),
        (&theirs, "other-client.pem", &["rmq-client"][..], true),
    ];
    let mut out = vec![
        (CA.to_owned(), ours.pem()),
        ("other-ca.pem".to_owned(), theirs.pem()),
    ];
    for (issuer, cert_file, names, client) in files {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(|e| format!("certificate for {names:?}: {e}"))?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().map_err(|e| format!("key pair: {e}"))?;
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|e| format!("sign {cert_file}: {e}"))?;
        out.push((cert_file.to_owned(), cert.pem()));
        out.push((cert_file.replace(".pem", ".key"), key.serialize_pem()));
    }
    for (name, pem) in out {
        let path = dir.join(name);
        fs::write(&path, pem).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn authority(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().map_err(|e| format!("key pair: {e}"))?;
    CertifiedIssuer::self_signed(params, key).map_err(|e| format!("CA {name}: {e}"))
}
