//! The bearer token: fetched once, shared by every concurrent call, refreshed single-flight.
//!
//! SiPay documents a two-hour token lifetime and asks merchants to reuse a token rather than
//! fetch one per request. The cache keeps a token for the configured lifetime (110 minutes by
//! default) measured on our monotonic clock from when it arrived. A refresh is single-flight:
//! callers that find the cache empty or stale queue on one async mutex; the first fetches, the
//! rest find the fresh token when their turn comes. So 1,000 refunds started together on a
//! cold client make exactly one token request.
//!
//! A failed fetch is shared the same way: every caller that was waiting on it gets that
//! fetch's error (the same class, code and message), instead of fetching again one after the
//! other. So N refunds started together against a broken or refusing token endpoint make one
//! token request, not N requests and N timeouts, and bad credentials are tried once, not N
//! times (no lockout risk). A caller that arrives after the failed fetch finished starts a new
//! one: a failure is shared, never cached.
//!
//! On HTTP 401 the client [`invalidate`](TokenCache::invalidate)s the token it used (only if
//! it is still the current one, so 1,000 concurrent 401s cause one refresh, not 1,000) and
//! resends once.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use refund_core::RefundError;
use secrecy::{ExposeSecret, SecretString};

/// A bearer token and which fetch it came from.
#[derive(Clone)]
pub(crate) struct Token {
    value: Arc<SecretString>,
    generation: u64,
}

impl Token {
    /// No token: for interpreting a recorded answer, where no bearer token was used.
    pub(crate) fn none() -> Token {
        Token {
            value: Arc::new(SecretString::from(String::new())),
            generation: 0,
        }
    }

    /// The token text, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token([REDACTED], generation {})", self.generation)
    }
}

struct Cached {
    token: Token,
    expires: Instant,
}

/// The shared token cache.
pub(crate) struct TokenCache {
    current: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    lifetime: Duration,
    generations: AtomicU64,
    fetches: AtomicU64,
    /// How many fetches have finished (succeeded or failed).
    finished: AtomicU64,
    /// The last finished fetch's error, when it failed: for the callers that waited on it.
    last_error: Mutex<Option<RefundError>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("cached", &self.valid().is_some())
            .field("lifetime", &self.lifetime)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(lifetime: Duration) -> Self {
        TokenCache {
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            lifetime,
            generations: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The cached token when it is still within its lifetime.
    fn valid(&self) -> Option<Token> {
        let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|c| Instant::now() < c.expires)
            .map(|c| c.token.clone())
    }

    /// The current token, fetching one with `fetch` when there is none (single-flight). When
    /// the fetch this caller waited on fails, the caller gets that fetch's error rather than
    /// fetching again.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Token, RefundError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SecretString, RefundError>>,
    {
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        // Fetches finished before we queue are not ours to share; any that finishes while we
        // wait is the one we waited on.
        let before = self.finished.load(Ordering::SeqCst);
        let _flight = self.refresh.lock().await;
        // Whoever held the lock before us may have fetched one.
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        if self.finished.load(Ordering::SeqCst) != before {
            let last = self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(error) = last.as_ref() {
                return Err(shared(error));
            }
            // It succeeded, and its token was invalidated since: fetch a new one.
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = fetch().await;
        // Only the lock holder writes `last_error` and `finished`, so the pair stays
        // consistent for the next holder.
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = result.as_ref().err().map(shared);
        let value = match result {
            Ok(value) => value,
            Err(e) => {
                self.finished.fetch_add(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        let token = Token {
            value: Arc::new(value),
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        };
        // The lifetime counts from when the request left: the server's clock started no
        // earlier than that.
        let cached = Cached {
            token: token.clone(),
            expires: started + self.lifetime,
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(cached);
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(token)
    }

    /// Forgets `used` after the server refused it, unless a newer token has replaced it.
    pub(crate) fn invalidate(&self, used: &Token) {
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if guard
            .as_ref()
            .is_some_and(|c| c.token.generation == used.generation)
        {
            *guard = None;
        }
    }

    /// How many token fetches were started (for tests and diagnostics).
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

/// A copy of a token fetch's error for another caller that waited on the same fetch.
fn shared(e: &RefundError) -> RefundError {
    e.copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(secret("t1"))
                    })
                    .await
                    .map(|t| t.expose().to_owned())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.fetches(), 1);
    }

    #[tokio::test]
    async fn tokens_expire_after_the_lifetime() {
        let cache = TokenCache::new(Duration::from_millis(50));
        let a = cache.get(|| async { Ok(secret("a")) }).await.unwrap();
        let again = cache.get(|| async { Ok(secret("x")) }).await.unwrap();
        assert_eq!(again.expose(), "a");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let b = cache.get(|| async { Ok(secret("b")) }).await.unwrap();
        assert_eq!((a.expose(), b.expose()), ("a", "b"));
    }

    #[tokio::test]
    async fn invalidating_a_stale_token_keeps_the_newer_one() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let a = cache.get(|| async { Ok(secret("a")) }).await.unwrap();
        cache.invalidate(&a);
        let b = cache.get(|| async { Ok(secret("b")) }).await.unwrap();
        cache.invalidate(&a); // a late 401 for the old token
        let still = cache.get(|| async { Ok(secret("c")) }).await.unwrap();
        assert_eq!((b.expose(), still.expose()), ("b", "b"));
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let e = cache
            .get(|| async { Err(RefundError::authentication("sipay", "30", "bad")) })
            .await
            .unwrap_err();
        assert!(matches!(e, RefundError::AuthenticationRejected { .. }));
        let t = cache.get(|| async { Ok(secret("ok")) }).await.unwrap();
        assert_eq!(t.expose(), "ok");
        assert!(!format!("{t:?} {cache:?}").contains("ok\""));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_waiting_on_a_failed_fetch_share_its_error() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err(RefundError::authentication(
                            "sipay",
                            "30",
                            "Invalid Credentials",
                        ))
                    })
                    .await
            }));
        }
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(
                matches!(e, RefundError::AuthenticationRejected { .. }),
                "{e}"
            );
            assert_eq!(e.provider_code(), Some("30"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A caller that comes after the failure tries again: failures are shared, not cached.
        let t = cache.get(|| async { Ok(secret("later")) }).await.unwrap();
        assert_eq!(t.expose(), "later");
        assert_eq!(cache.fetches(), 2);
    }

    #[test]
    fn a_shared_error_keeps_the_class_code_and_message() {
        let cases = [
            RefundError::authentication("sipay", "30", "Invalid Credentials"),
            RefundError::outcome_unknown("sipay", "timed out"),
            RefundError::declined_retryable("sipay", "69", "later"),
            RefundError::unreachable("sipay", "connection refused"),
            RefundError::rate_limited("sipay", Some(Duration::from_secs(1))),
        ];
        for e in &cases {
            let copy = shared(e);
            assert_eq!(copy.kind(), e.kind());
            assert_eq!(copy.to_string(), e.to_string());
            assert_eq!(copy.is_retryable(), e.is_retryable());
            assert_eq!(copy.provider_code(), e.provider_code());
        }
    }
}
