//! Password hashing (argon2id, off the async threads) and the password rule.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;

/// Hashes a password with argon2id (default parameters) on the blocking pool.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await?
}

/// Checks a password against a stored hash on the blocking pool. Unknown users are checked
/// against a fixed dummy hash, so both cases take the same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// The password rule: 10 to 256 characters, not all one character, not containing the
/// username or the email's local part (`user_inputs`), and hard to guess by zxcvbn's estimate
/// (score 3 of 4: common passwords, keyboard walks, dates and dictionary words are refused).
/// The message says why.
pub fn check_rule(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let n = password.chars().count();
    if n < 10 {
        return Err("must be at least 10 characters".into());
    }
    if n > 256 {
        return Err("must be at most 256 characters".into());
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err("must not repeat one character".into());
    }
    let lowered = password.to_lowercase();
    for input in user_inputs {
        let input = input.to_lowercase();
        let name = input.split('@').next().unwrap_or_default();
        if name.chars().count() >= 3 && lowered.contains(name) {
            return Err("must not contain the username or email".into());
        }
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) < 3 {
        let warning = estimate.feedback().and_then(|f| f.warning()).map(|w| w.to_string());
        return Err(match warning {
            Some(w) if !w.is_empty() => format!("is too easy to guess: {w}"),
            _ => "is too easy to guess; use a few uncommon words or more characters".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("no user has this password".into(), None).await);
    }

    #[test]
    fn the_rule_refuses_short_monotonous_common_and_name_derived_passwords() {
        assert!(check_rule("short", &[]).is_err());
        assert!(check_rule("aaaaaaaaaaaa", &[]).is_err());
        for common in ["password12", "1234567890", "qwertyuiop", "Password123"] {
            let why = check_rule(common, &[]).expect_err(common);
            assert!(why.starts_with("is too easy to guess"), "{common}: {why}");
        }
        let why = check_rule("tuser5tuser5", &["tuser5", "tuser5@example.com"]).unwrap_err();
        assert_eq!(why, "must not contain the username or email");
        let why = check_rule("an admin password for tests", &["admin"]).unwrap_err();
        assert_eq!(why, "must not contain the username or email");
        let why = check_rule("carol-has-a-cat-9", &["someone", "carol@example.com"]).unwrap_err();
        assert_eq!(why, "must not contain the username or email");
        for fine in ["correct horse battery", "an operator passphrase for tests", "a brand new secret"] {
            assert_eq!(check_rule(fine, &["ann"]), Ok(()), "{fine}");
        }
    }
}
