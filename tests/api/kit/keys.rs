//! Signing keys for tokens, made at test time by `openssl genpkey` in
//! PKCS#8 PEM, and the JWKS file that publishes them.

use std::path::Path;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub struct TestKey {
    kid: String,
    pub alg: Algorithm,
    pub pem: Vec<u8>,
}

impl TestKey {
    /// A new private key made by `openssl genpkey`, saved as `<dir>/<kid>.pem`.
    pub fn generate(dir: &Path, kid: &str, alg: Algorithm) -> Self {
        let path = dir.join(format!("{kid}.pem"));
        let options: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::EdDSA => &["-algorithm", "ed25519"],
            _ => unreachable!(),
        };
        let out = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(options)
            .arg("-out")
            .arg(&path)
            .output()
            .expect("openssl is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read(&path).unwrap();
        Self {
            kid: kid.into(),
            alg,
            pem,
        }
    }

    fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&self.pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&self.pem),
            _ => EncodingKey::from_ed_pem(&self.pem),
        }
        .unwrap()
    }

    /// The public half as a JWK, with its `kid` and `alg`.
    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding(), self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.key_algorithm = Some(KeyAlgorithm::from(self.alg));
        jwk
    }

    /// A token signed by this key, naming `kid` (its own unless given).
    pub fn mint(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.unwrap_or(&self.kid).to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }
}

pub fn write_jwks(path: &Path, keys: &[&TestKey]) {
    let set = JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    };
    // Written whole, then renamed: the watcher never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&set).unwrap()).unwrap();
    std::fs::rename(partial, path).unwrap();
}
