//! Access tokens (JWT, HS256 only), opaque refresh tokens and API keys, and the signing secret.

use std::path::Path;

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Always `access` (the S&OP system's `type` claim).
    #[serde(rename = "type")]
    pub typ: String,
    /// Username.
    pub name: String,
    /// Email, if any.
    pub email: Option<String>,
    /// First role (the S&OP system's `role` claim).
    pub role: Option<String>,
    /// The session (refresh-token family) it was issued in: when the session ends, so does the
    /// token. Absent only from tokens of older versions, which are refused.
    #[serde(default)]
    pub sid: Option<String>,
}

/// Signs and checks access tokens. The algorithm is pinned to HS256: `none`, RS*/ES* and any
/// other `alg` in a token's header are refused.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
        }
    }

    /// Lifetime of an access token in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for a user.
    pub fn issue(
        &self,
        user_id: &str,
        name: &str,
        email: Option<&str>,
        role: Option<&str>,
        session: &str,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.ttl_secs,
            iat: now,
            jti: random_hex(8),
            typ: "access".into(),
            name: name.to_owned(),
            email: email.map(str::to_owned),
            role: role.map(str::to_owned),
            sid: Some(session.to_owned()),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Checks signature, algorithm, issuer, audience, expiry and type.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.typ == "access" => Ok(data.claims),
            Ok(_) => Err("not an access token"),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidAudience => "token is for another audience",
                ErrorKind::InvalidIssuer => "token is from another issuer",
                ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                ErrorKind::InvalidSignature => "token signature is invalid",
                _ => "invalid token",
            }),
        }
    }
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a high-entropy token, as stored in place of the token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Prefix of API keys, so a bearer value can be told apart from a JWT.
pub const API_KEY_PREFIX: &str = "slk_";

/// Reads the signing secret from `configured`, else from `<data_dir>/jwt-secret`, creating that
/// file (mode 0600) with 32 random bytes the first time.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 32,
            "configuration error: key `auth.jwt_secret`: must be at least 32 characters"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        anyhow::ensure!(
            existing.len() >= 32,
            "{} is too short; delete it to generate a new one",
            path.display()
        );
        return Ok(existing.as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("Failed to create {}", data_dir.display()))?;
    let secret = random_hex(32);
    write_private(&path, &secret)?;
    tracing::info!(path = %path.display(), "auth.jwt_secret_created");
    Ok(secret.into_bytes())
}

/// Writes `contents` to a new file readable by the owner only.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_its_own_keys_only() {
        let keys = JwtKeys::new(&[7u8; 32], "sightline", "sightline-api", 60);
        let token = keys.issue("usr_1", "ann", None, Some("viewer"), "fam_1").unwrap();
        assert_eq!(keys.verify(&token).unwrap().sub, "usr_1");
        let other = JwtKeys::new(&[8u8; 32], "sightline", "sightline-api", 60);
        assert_eq!(other.verify(&token).unwrap_err(), "token signature is invalid");
        let elsewhere = JwtKeys::new(&[7u8; 32], "sightline", "another-api", 60);
        assert_eq!(elsewhere.verify(&token).unwrap_err(), "token is for another audience");
    }

    #[test]
    fn the_secret_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(None, dir.path()).unwrap();
        let second = load_or_create_secret(None, dir.path()).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("jwt-secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(load_or_create_secret(Some("short"), dir.path()).is_err());
    }
}
