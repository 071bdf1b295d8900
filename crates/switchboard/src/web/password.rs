//! Web passwords: argon2id PHC strings in the configuration, checked at login.
//!
//! The configuration holds only the hash (`switchboard hash-password`), so a leaked file does
//! not give anyone a login; argon2id makes guessing from the hash slow.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Checks that `text` is an argon2 PHC string this build can verify (at config load).
pub fn parse_hash(text: &str) -> Result<String, String> {
    let hash = PasswordHash::new(text).map_err(|error| {
        format!("not an argon2 PHC string ({error}): make one with `switchboard hash-password`")
    })?;
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "algorithm {:?} is not argon2: make the hash with `switchboard hash-password`",
            hash.algorithm.as_str()
        ));
    }
    Ok(text.to_owned())
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches (the
/// loader refuses those, so this only guards against a hash changed behind its back).
pub fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new argon2id PHC string for `password` with a random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| error.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert_eq!(parse_hash(&phc).as_deref(), Ok(phc.as_str()));
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horse "));
        assert!(!verify("not a hash", "correct horse"));
    }

    #[test]
    fn malformed_hashes_are_explained() {
        let error = parse_hash("secret").expect_err("plain text is refused");
        assert!(error.contains("switchboard hash-password"), "{error}");
    }
}
