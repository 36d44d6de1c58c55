//! SiPay's `hash_key`: AES-256-CBC over `|`-joined fields, keyed from the `app_secret`.
//!
//! The algorithm, as SiPay documents it (the bash and PHP samples on the "Refund" and "Hash
//! Information" pages) and as public PHP integrations implement it:
//!
//! 1. `data` = the fields joined with `|` — for a refund `amount|invoice_id|merchant_key`, for
//!    check status `invoice_id|merchant_key`;
//! 2. `iv` = 16 random hex characters, `salt` = 4 random hex characters (the samples take the
//!    first characters of `sha1(random)`; this crate draws them from the OS RNG directly);
//! 3. `password` = `sha1_hex(app_secret)` (40 hex characters);
//! 4. `key` = the first 32 characters of `sha256_hex(password + salt)`, used as 32 ASCII bytes;
//!    the `iv` is used as 16 ASCII bytes;
//! 5. `ciphertext` = AES-256-CBC with PKCS#7 padding, base64 (standard alphabet, padded);
//! 6. output `iv:salt:ciphertext`, with every `/` written as `__`.
//!
//! The output never contains a line break. SiPay's documented bash sample pipes through
//! `openssl enc -base64`, which wraps base64 every 64 characters: with a real, 60-character
//! merchant key its output has a line break in the middle. That is a defect of the sample (the
//! PHP reference emits none); [`validate_hash_key`] rejects such input with
//! [`HashKeyErrorKind::LineBreak`] so a simulator catches it.
//!
//! The step that costs something per client, `sha1_hex(app_secret)`, is done once by
//! [`HashKeySigner::new`]; the provider client keeps one signer. The free functions
//! [`generate`], [`generate_with`] and [`validate_hash_key`] derive it per call, for tests,
//! simulators and one-off use.
//!
//! ```
//! use refund_sipay::hash_key::{generate, validate_hash_key};
//!
//! let key = generate("my_secret_key_456", &["100.50", "INV-2026-0001", "test_merchant_123"]);
//! assert!(!key.contains('/') && !key.contains('\n'));
//! let fields = validate_hash_key(&key, "my_secret_key_456")?;
//! assert_eq!(fields, ["100.50", "INV-2026-0001", "test_merchant_123"]);
//! # Ok::<(), refund_sipay::hash_key::HashKeyError>(())
//! ```

use std::fmt;

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use secrecy::{ExposeSecret, SecretBox};
use sha1::{Digest, Sha1};
use sha2::Sha256;

type Encryptor = cbc::Encryptor<Aes256>;
type Decryptor = cbc::Decryptor<Aes256>;

/// Length of the iv, in characters (= bytes: it is used as ASCII).
pub const IV_LEN: usize = 16;
/// Length of the salt the generators produce, in characters.
pub const SALT_LEN: usize = 4;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The kinds of malformed `hash_key` [`validate_hash_key`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashKeyErrorKind {
    /// Not three `:`-separated parts `iv:salt:ciphertext`, or an empty salt.
    Format,
    /// A line break or other whitespace inside the hash_key (the documented bash sample's
    /// line-wrapped base64).
    LineBreak,
    /// The iv is not 16 bytes.
    IvLength,
    /// The ciphertext is not valid base64.
    Base64,
    /// The ciphertext is empty or not a whole number of AES blocks.
    CiphertextLength,
    /// Decryption produced invalid padding: a different `app_secret`, or a corrupted hash_key.
    Decrypt,
    /// The plaintext is not UTF-8.
    NotUtf8,
}

/// Why a `hash_key` could not be decrypted. Carries only the kind of problem: never the
/// hash_key, its plaintext (which holds the merchant key) or the app_secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("invalid SiPay hash_key: {}", describe(*.kind))]
pub struct HashKeyError {
    kind: HashKeyErrorKind,
}

impl HashKeyError {
    fn new(kind: HashKeyErrorKind) -> Self {
        HashKeyError { kind }
    }

    /// What was wrong.
    pub fn kind(&self) -> HashKeyErrorKind {
        self.kind
    }
}

pub(crate) fn describe(kind: HashKeyErrorKind) -> &'static str {
    match kind {
        HashKeyErrorKind::Format => "expected three ':'-separated parts iv:salt:ciphertext",
        HashKeyErrorKind::LineBreak => {
            "contains a line break or whitespace (line-wrapped base64, as from `openssl enc -base64` without -A)"
        }
        HashKeyErrorKind::IvLength => "the iv must be 16 characters",
        HashKeyErrorKind::Base64 => "the ciphertext is not valid base64",
        HashKeyErrorKind::CiphertextLength => {
            "the ciphertext is not a whole number of 16-byte blocks"
        }
        HashKeyErrorKind::Decrypt => "decryption failed (wrong app_secret or a corrupted hash_key)",
        HashKeyErrorKind::NotUtf8 => "the decrypted text is not UTF-8",
    }
}

/// Makes and checks hash_keys for one `app_secret`, with the password
/// (`sha1_hex(app_secret)`) derived once.
///
/// `Debug` prints `[REDACTED]`; the password is zeroed on drop.
///
/// ```
/// use refund_sipay::hash_key::HashKeySigner;
///
/// let signer = HashKeySigner::new("my_secret_key_456");
/// let key = signer.sign(&["25.00", "INV-1", "merchant-key"]);
/// assert_eq!(signer.validate(&key)?, ["25.00", "INV-1", "merchant-key"]);
/// assert_eq!(format!("{signer:?}"), "HashKeySigner([REDACTED])");
/// # Ok::<(), refund_sipay::hash_key::HashKeyError>(())
/// ```
pub struct HashKeySigner {
    /// `sha1_hex(app_secret)` as 40 ASCII hex digits.
    password: SecretBox<[u8; 40]>,
}

impl fmt::Debug for HashKeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKeySigner([REDACTED])")
    }
}

impl HashKeySigner {
    /// Derives the password from `app_secret`.
    pub fn new(app_secret: &str) -> Self {
        let digest = Sha1::digest(app_secret.as_bytes());
        let mut password = Box::new([0u8; 40]);
        hex_into(&digest, &mut password[..]);
        HashKeySigner {
            password: SecretBox::new(password),
        }
    }

    /// A hash_key over `fields` joined by `|`, with a fresh iv and salt from the OS RNG.
    pub fn sign(&self, fields: &[&str]) -> String {
        let (iv, salt) = random_iv_salt();
        self.sign_bytes(fields, &iv, &salt)
    }

    /// A hash_key with the given iv and salt: deterministic, for reference vectors and
    /// simulators. Never reuse an iv for real requests; use [`sign`](Self::sign).
    ///
    /// `iv` should be 16 characters. Like PHP's `openssl_encrypt`, which SiPay's reference
    /// uses, a shorter iv is padded with NUL bytes and a longer one cut to 16 bytes (the
    /// output still carries the iv text as given, so [`validate`](Self::validate) rejects
    /// it unless it is 16 bytes). `salt` should be 4 characters without `:`.
    pub fn sign_with(&self, fields: &[&str], iv: &str, salt: &str) -> String {
        self.sign_bytes(fields, iv.as_bytes(), salt.as_bytes())
    }

    fn sign_bytes(&self, fields: &[&str], iv_text: &[u8], salt: &[u8]) -> String {
        let key = self.key(salt);
        let iv = iv_block(iv_text);
        let data = join_fields(fields);
        let ciphertext = Encryptor::new(&key.into(), &iv.into()).encrypt_padded_vec::<Pkcs7>(&data);
        let encoded = BASE64.encode(&ciphertext);

        let mut out = String::with_capacity(iv_text.len() + salt.len() + 2 + encoded.len() + 8);
        // The documented transform (`/` → `__`) applies to the whole message; iv and salt are
        // hex when this crate makes them, but a caller of `sign_with` may pass anything.
        push_escaped(&mut out, &String::from_utf8_lossy(iv_text));
        out.push(':');
        push_escaped(&mut out, &String::from_utf8_lossy(salt));
        out.push(':');
        push_escaped(&mut out, &encoded);
        out
    }

    /// Decrypts a hash_key made with this signer's `app_secret` and splits the plaintext on
    /// `|`.
    ///
    /// Strict: three `:`-separated parts, a 16-character iv, a non-empty salt, standard padded
    /// base64 (with `/` written as `__`), no whitespace or line breaks, valid PKCS#7 padding,
    /// UTF-8 plaintext. Every other input is a [`HashKeyError`], never a panic.
    pub fn validate(&self, hash_key: &str) -> Result<Vec<String>, HashKeyError> {
        if hash_key.chars().any(char::is_whitespace) {
            return Err(HashKeyError::new(HashKeyErrorKind::LineBreak));
        }
        let restored = hash_key.replace("__", "/");
        let mut parts = restored.split(':');
        let (Some(iv), Some(salt), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HashKeyError::new(HashKeyErrorKind::Format));
        };
        if salt.is_empty() {
            return Err(HashKeyError::new(HashKeyErrorKind::Format));
        }
        if iv.len() != IV_LEN {
            return Err(HashKeyError::new(HashKeyErrorKind::IvLength));
        }
        let bytes = BASE64
            .decode(ciphertext)
            .map_err(|_| HashKeyError::new(HashKeyErrorKind::Base64))?;
        if bytes.is_empty() || bytes.len() % 16 != 0 {
            return Err(HashKeyError::new(HashKeyErrorKind::CiphertextLength));
        }
        let key = self.key(salt.as_bytes());
        let iv = iv_block(iv.as_bytes());
        let plain = Decryptor::new(&key.into(), &iv.into())
            .decrypt_padded_vec::<Pkcs7>(&bytes)
            .map_err(|_| HashKeyError::new(HashKeyErrorKind::Decrypt))?;
        let text =
            String::from_utf8(plain).map_err(|_| HashKeyError::new(HashKeyErrorKind::NotUtf8))?;
        Ok(text.split('|').map(str::to_owned).collect())
    }

    /// The first 32 hex characters of `sha256(password + salt)`, as ASCII bytes.
    fn key(&self, salt: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.password.expose_secret());
        hasher.update(salt);
        let digest = hasher.finalize();
        let mut key = [0u8; 32];
        hex_into(&digest[..16], &mut key);
        key
    }
}

/// A hash_key over `fields` joined by `|`, with a fresh iv and salt from the OS RNG.
///
/// Derives the password from `app_secret` on every call; a client signing many requests
/// keeps a [`HashKeySigner`] instead.
pub fn generate(app_secret: &str, fields: &[&str]) -> String {
    HashKeySigner::new(app_secret).sign(fields)
}

/// A deterministic hash_key with the given `iv` (16 characters) and `salt` (4 characters),
/// for reference vectors and simulators. See [`HashKeySigner::sign_with`].
///
/// ```
/// use refund_sipay::hash_key::generate_with;
///
/// // Made by tests/vectors/make_hash_key_vectors.sh with the openssl command line.
/// let key = generate_with(
///     "my_secret_key_456",
///     &["100.50", "INV-2026-0001", "test_merchant_123"],
///     "0123456789abcdef",
///     "a1b2",
/// );
/// assert_eq!(
///     key,
///     "0123456789abcdef:a1b2:VPLV8wrIgS7RAUu+yG788gAk4Sq07__9v__D5O+GdTByrpQVyIkx48ayfqq9jeWdSk"
/// );
/// ```
pub fn generate_with(app_secret: &str, fields: &[&str], iv: &str, salt: &str) -> String {
    HashKeySigner::new(app_secret).sign_with(fields, iv, salt)
}

/// Decrypts `hash_key` with `app_secret` and returns the fields (the plaintext split on `|`).
/// See [`HashKeySigner::validate`].
pub fn validate_hash_key(hash_key: &str, app_secret: &str) -> Result<Vec<String>, HashKeyError> {
    HashKeySigner::new(app_secret).validate(hash_key)
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if c == '/' {
            out.push_str("__");
        } else {
            out.push(c);
        }
    }
}

fn join_fields(fields: &[&str]) -> Vec<u8> {
    let len = fields.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut data = Vec::with_capacity(len);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            data.push(b'|');
        }
        data.extend_from_slice(f.as_bytes());
    }
    data
}

/// The iv text as a 16-byte block: NUL-padded or cut, as PHP's openssl_encrypt does.
fn iv_block(iv: &[u8]) -> [u8; IV_LEN] {
    let mut block = [0u8; IV_LEN];
    let n = iv.len().min(IV_LEN);
    block[..n].copy_from_slice(&iv[..n]);
    block
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if let Some(pair) = out.get_mut(2 * i..2 * i + 2) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
    }
}

/// 16 hex characters of iv and 4 of salt from the OS RNG.
///
/// If the OS RNG fails (it does not on supported platforms), the bytes come from SHA-1 of the
/// clock, a process counter and the thread, as SiPay's own samples derive them from SHA-1 of a
/// random value: unique within the process, which is what CBC needs from an iv here.
fn random_iv_salt() -> ([u8; IV_LEN], [u8; SALT_LEN]) {
    let mut raw = [0u8; 10];
    if getrandom::fill(&mut raw).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut h = Sha1::new();
        h.update(nanos.to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(format!("{:?}", std::thread::current().id()).as_bytes());
        let d = h.finalize();
        raw.copy_from_slice(&d[..10]);
    }
    let mut iv = [0u8; IV_LEN];
    let mut salt = [0u8; SALT_LEN];
    hex_into(&raw[..8], &mut iv);
    hex_into(&raw[8..], &mut salt);
    (iv, salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "b46a67571aa1e7ef5641dc3fa6f1712a";
    const MERCHANT_KEY: &str = "$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO";

    #[test]
    fn generated_keys_round_trip_and_have_the_documented_shape() {
        let key = generate(SECRET, &["100.50", "INV-1", MERCHANT_KEY]);
        let mut parts = key.splitn(3, ':');
        let iv = parts.next().unwrap();
        let salt = parts.next().unwrap();
        assert_eq!(iv.len(), 16);
        assert_eq!(salt.len(), 4);
        assert!(
            iv.bytes()
                .chain(salt.bytes())
                .all(|b| b.is_ascii_hexdigit())
        );
        assert!(!key.contains('/'));
        assert!(!key.contains('\n'));
        assert_eq!(
            validate_hash_key(&key, SECRET).unwrap(),
            ["100.50", "INV-1", MERCHANT_KEY]
        );
    }

    #[test]
    fn every_call_uses_a_fresh_iv_and_salt() {
        let a = generate(SECRET, &["1.00", "I", "k"]);
        let b = generate(SECRET, &["1.00", "I", "k"]);
        assert_ne!(a, b);
        assert_ne!(a[..21], b[..21]);
    }

    #[test]
    fn a_different_secret_does_not_decrypt() {
        let key = generate(SECRET, &["100.50", "INV-1", MERCHANT_KEY]);
        // Padding may by chance look valid; then the plaintext is garbage.
        match validate_hash_key(&key, "another-secret") {
            Err(e) => assert!(matches!(
                e.kind(),
                HashKeyErrorKind::Decrypt | HashKeyErrorKind::NotUtf8
            )),
            Ok(fields) => assert_ne!(fields, ["100.50", "INV-1", MERCHANT_KEY]),
        }
    }

    #[test]
    fn malformed_keys_are_typed_errors() {
        let good = generate_with(SECRET, &["1.00", "I", "k"], "0123456789abcdef", "a1b2");
        let ct = good.splitn(3, ':').nth(2).unwrap().to_owned();
        let cases: Vec<(String, HashKeyErrorKind)> = vec![
            (String::new(), HashKeyErrorKind::Format),
            ("abc".into(), HashKeyErrorKind::Format),
            ("a:b".into(), HashKeyErrorKind::Format),
            (
                format!("0123456789abcdef:a1b2:{ct}:x"),
                HashKeyErrorKind::Format,
            ),
            (format!("0123456789abcdef::{ct}"), HashKeyErrorKind::Format),
            (
                format!("0123456789abcde:a1b2:{ct}"),
                HashKeyErrorKind::IvLength,
            ),
            (
                format!("0123456789abcdefg:a1b2:{ct}"),
                HashKeyErrorKind::IvLength,
            ),
            (
                "0123456789abcdef:a1b2:!!!!".into(),
                HashKeyErrorKind::Base64,
            ),
            (
                "0123456789abcdef:a1b2:QUJD".into(),
                HashKeyErrorKind::CiphertextLength,
            ),
            (
                "0123456789abcdef:a1b2:".into(),
                HashKeyErrorKind::CiphertextLength,
            ),
            (
                format!("0123456789abcdef:a1b2:{}\n{}", &ct[..8], &ct[8..]),
                HashKeyErrorKind::LineBreak,
            ),
            (format!("{good} "), HashKeyErrorKind::LineBreak),
            (
                format!("0123456789abcdef:ffff:{ct}"),
                HashKeyErrorKind::Decrypt,
            ),
        ];
        for (input, kind) in cases {
            let e = validate_hash_key(&input, SECRET).unwrap_err();
            assert_eq!(e.kind(), kind, "{input:?}");
            assert!(!e.to_string().contains(SECRET));
        }
    }

    #[test]
    fn errors_carry_no_secret_or_plaintext() {
        let key = generate(SECRET, &["1.00", "I", MERCHANT_KEY]);
        let e = validate_hash_key(&key, "wrong").map(|_| ()).err();
        if let Some(e) = e {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(MERCHANT_KEY) && !text.contains(SECRET) && !text.contains(&key));
        }
        let signer = HashKeySigner::new(SECRET);
        assert!(!format!("{signer:?}").contains(SECRET));
    }

    #[test]
    fn short_ivs_are_nul_padded_like_php() {
        let key = generate_with(SECRET, &["x"], "abc", "salt");
        assert!(key.starts_with("abc:salt:"));
        assert_eq!(
            validate_hash_key(&key, SECRET).unwrap_err().kind(),
            HashKeyErrorKind::IvLength
        );
    }
}
