//! API bearer tokens are kept and compared as SHA-256 digests: the configuration may hold only
//! the digest (`token_sha256`), so a leaked config file does not leak a usable token, and
//! comparing fixed-length digests in constant time leaks neither the token's length nor how
//! many leading bytes matched.

use sha2::{Digest, Sha256};

/// The SHA-256 digest of one bearer token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token` as sent in `Authorization: Bearer <token>`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hexadecimal digits (either case), as printed by `switchboard hash-token`.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| {
            format!(
                "invalid SHA-256 digest: expected 64 hexadecimal digits, found {} characters{}",
                text.chars().count(),
                if text.chars().all(|c| c.is_ascii_hexdigit()) {
                    ""
                } else {
                    " with non-hexadecimal ones"
                }
            )
        })?;
        Ok(Self(bytes))
    }

    /// Lower-case hexadecimal, 64 digits.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Compares in time independent of where the digests differ.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl std::fmt::Debug for TokenDigest {
    // Only a prefix: enough to tell tokens apart in a debug dump, too little to brute-force.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenDigest({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_in_lower_case_hex() {
        // `printf %s demo-token | sha256sum`
        assert_eq!(
            TokenDigest::of("demo-token").to_hex(),
            "7c43ef5ae21d43ce2743f770c68e24def1a43ee2f416d2438410c8af7af2ff2c"
        );
        assert_eq!(
            TokenDigest::of("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trips_in_either_case() {
        let digest = TokenDigest::of("s3cret");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Ok(digest));
        assert_eq!(
            TokenDigest::from_hex(&digest.to_hex().to_uppercase()),
            Ok(digest)
        );
    }

    #[test]
    fn bad_hex_is_explained() {
        let short = TokenDigest::from_hex("abcd").expect_err("too short");
        assert!(short.contains("found 4 characters"), "{short}");
        let bad = TokenDigest::from_hex(&"z".repeat(64)).expect_err("not hex");
        assert!(bad.contains("non-hexadecimal"), "{bad}");
    }

    #[test]
    fn digests_compare_exactly() {
        let a = TokenDigest::of("demo-token");
        assert!(a.matches(&TokenDigest::of("demo-token")));
        assert!(!a.matches(&TokenDigest::of("demo-tokem")));
        assert!(!a.matches(&TokenDigest::of("demo")));
    }
}
