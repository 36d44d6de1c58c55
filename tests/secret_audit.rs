//! The secret audit: every provider operation, success and failure, runs with TRACE-level
//! tracing captured; the `Debug` (`{:?}` and `{:#?}`) and `Display` output of every public
//! type we can build is printed, with every error's source chain and the JSON of every
//! receipt and state. No secret may appear anywhere in all of that text: not SiPay's
//! `app_secret` or `merchant_key` (which is also the plaintext of every `hash_key`), not a
//! bearer token the simulator issued, not iyzico's API key or secret key, and not the wrong
//! secrets the "bad credentials" clients hold.
//!
//! A failure names where the secret appeared and masks it. The captured trace text must be
//! non-trivial, so the test cannot pass by capturing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error as _;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use refund_core::{
    Capabilities, Currency, Decimal, MerchantRef, Money, PaymentRef, ProviderRegistry, RefundError,
    RefundProvider, RefundReceipt, RefundRequest, RefundState, RetryPolicy, Retrying, VoidRequest,
};
use refund_iyzico::signature::{RequestSigner, parse_authorization};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::hash_key::{self, HashKeySigner};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::conformance::capture_tracing;
use refund_testkit::matchers::{IyzicoAuth, SipayAuth};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};

const TIMEOUT: Duration = Duration::from_secs(2);
/// The secret the "wrong app_secret" SiPay client holds: still a secret, must not leak either.
const WRONG_APP_SECRET: &str = "audit-wrong-sipay-app-secret-7f3a9c";
/// The secret key the "wrong secret" iyzico client holds.
const WRONG_SECRET_KEY: &str = "audit-wrong-iyzico-secret-key-5e2b8d";

/// Everything printed, each piece labelled with where it came from.
#[derive(Default)]
struct Audit {
    texts: Vec<(String, String)>,
    trace_bytes: usize,
    /// Operations whose captured trace was empty (the capture would then prove nothing).
    silent: Vec<String>,
}

impl Audit {
    fn add(&mut self, label: impl Into<String>, text: String) {
        self.texts.push((label.into(), text));
    }

    fn debug<T: Debug + ?Sized>(&mut self, label: &str, value: &T) {
        self.add(format!("{label} {{:?}}"), format!("{value:?}"));
        self.add(format!("{label} {{:#?}}"), format!("{value:#?}"));
    }

    fn display<T: Display + ?Sized>(&mut self, label: &str, value: &T) {
        self.add(format!("{label} {{}}"), format!("{value}"));
    }

    fn both<T: Debug + Display + ?Sized>(&mut self, label: &str, value: &T) {
        self.debug(label, value);
        self.display(label, value);
    }

    fn error(&mut self, label: &str, error: &RefundError) {
        self.both(label, error);
        let mut source = error.source();
        let mut depth = 0;
        while let Some(cause) = source {
            depth += 1;
            self.add(format!("{label} source#{depth} {{}}"), cause.to_string());
            self.add(
                format!("{label} source#{depth} {{:?}}"),
                format!("{cause:?}"),
            );
            source = cause.source();
        }
    }

    fn receipt(&mut self, label: &str, receipt: &RefundReceipt) {
        self.debug(label, receipt);
        self.add(
            format!("{label} json"),
            serde_json::to_string(receipt).unwrap(),
        );
    }

    fn state(&mut self, label: &str, state: &RefundState) {
        self.debug(label, state);
        self.add(
            format!("{label} json"),
            serde_json::to_string(state).unwrap(),
        );
    }

    fn result(&mut self, label: &str, result: &Result<RefundReceipt, RefundError>) {
        match result {
            Ok(receipt) => self.receipt(&format!("{label} receipt"), receipt),
            Err(error) => self.error(&format!("{label} error"), error),
        }
    }

    /// Runs `fut` with TRACE output captured and records the trace text.
    async fn traced<F: Future>(&mut self, label: &str, fut: F) -> F::Output {
        let (output, log) = capture_tracing(fut).await;
        self.trace_bytes += log.text.len();
        if log.text.trim().is_empty() {
            self.silent.push(label.to_owned());
        }
        self.add(format!("trace of {label}"), log.text);
        output
    }

    /// Every (place, secret name) pair where a secret occurs, the secret masked.
    fn leaks(&self, secrets: &[(String, String)]) -> Vec<String> {
        let mut found = Vec::new();
        for (label, text) in &self.texts {
            for (name, secret) in secrets {
                if text.contains(secret.as_str()) {
                    found.push(format!("{name} ({}) appears in: {label}", mask(secret)));
                }
            }
        }
        found
    }
}

fn mask(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}***[{} chars]", secret.chars().count())
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn try_money(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn sipay_config(base: &str, app_secret: &str) -> SipayConfig {
    SipayConfig::new(SipaySim::APP_ID, app_secret, SipaySim::MERCHANT_KEY)
        .with_base_url(base)
        .unwrap()
        .with_timeout(TIMEOUT)
}

fn iyzico_config(base: &str, secret_key: &str) -> IyzicoConfig {
    IyzicoConfig::new(IyzicoSim::API_KEY, secret_key)
        .with_base_url(base)
        .unwrap()
        .with_timeout(TIMEOUT)
}

fn sipay_request(invoice: &str, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment(invoice), try_money(amount))
        .reference(reference)
        .build()
        .unwrap()
}

/// Runs every SiPay operation; returns the bearer tokens the simulator saw.
async fn audit_sipay(audit: &mut Audit) -> (Sipay, Vec<String>) {
    let sim = SipaySim::start().await.unwrap();
    let creds = sim.credentials();
    audit.debug("SipayCredentials", &creds);
    let config = sipay_config(&creds.base_url, creds.app_secret);
    audit.debug("SipayConfig", &config);
    let sipay = Sipay::new(config).unwrap();
    audit.debug("Sipay", &sipay);
    audit.debug("SipaySim", &sim);

    sim.add_payment("INV-AUDIT-1", dec("100.00"), Currency::Try);
    sim.add_payment("INV-AUDIT-2", dec("50.00"), Currency::Try);

    let request = sipay_request("INV-AUDIT-1", "100.00", "audit-sipay-full");
    audit.debug("RefundRequest (sipay)", &request);
    let result = audit
        .traced("sipay full refund", sipay.refund(&request))
        .await;
    assert!(result.is_ok(), "{result:?}");
    audit.result("sipay full refund", &result);

    let request = sipay_request("INV-AUDIT-2", "10.00", "audit-sipay-partial");
    let result = audit
        .traced("sipay partial refund", sipay.refund(&request))
        .await;
    assert!(result.is_ok(), "{result:?}");
    audit.result("sipay partial refund", &result);

    let request = sipay_request("INV-AUDIT-2", "500.00", "audit-sipay-over");
    let result = audit
        .traced("sipay over-refund", sipay.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("sipay over-refund", &result);

    let request = sipay_request("INV-AUDIT-UNKNOWN", "1.00", "audit-sipay-unknown");
    let result = audit
        .traced("sipay unknown invoice", sipay.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("sipay unknown invoice", &result);

    let state = audit
        .traced(
            "sipay refund_state",
            sipay.refund_state(&PaymentRef::payment("INV-AUDIT-2")),
        )
        .await;
    match &state {
        Ok(state) => audit.state("sipay refund_state", state),
        Err(e) => panic!("sipay refund_state failed: {e}"),
    }
    let state = audit
        .traced(
            "sipay refund_state unknown",
            sipay.refund_state(&PaymentRef::payment("INV-AUDIT-UNKNOWN")),
        )
        .await;
    match &state {
        Ok(state) => audit.state("sipay refund_state unknown", state),
        Err(e) => audit.error("sipay refund_state unknown error", e),
    }

    // Faults: each one armed for one request.
    for (n, fault) in [Fault::TokenExpired, Fault::Http500, Fault::LostResponse]
        .into_iter()
        .enumerate()
    {
        let invoice = format!("INV-AUDIT-F{n}");
        sim.add_payment(&invoice, dec("20.00"), Currency::Try);
        sim.arm(fault, 1);
        let label = format!("sipay refund under {fault:?}");
        let request = sipay_request(&invoice, "5.00", &format!("audit-sipay-fault-{n}"));
        let result = audit.traced(&label, sipay.refund(&request)).await;
        audit.debug("Fault", &fault);
        audit.result(&label, &result);
        sim.disarm();
    }

    // Wrong app_secret: the simulator refuses the token request.
    let wrong = Sipay::new(sipay_config(&creds.base_url, WRONG_APP_SECRET)).unwrap();
    audit.debug("Sipay (wrong app_secret)", &wrong);
    let request = sipay_request("INV-AUDIT-1", "1.00", "audit-sipay-wrong-secret");
    let result = audit
        .traced("sipay wrong app_secret", wrong.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("sipay wrong app_secret", &result);

    // Nothing listening.
    let unreachable = Sipay::new(sipay_config(&closed_port_url(), creds.app_secret)).unwrap();
    let request = sipay_request("INV-AUDIT-1", "1.00", "audit-sipay-unreachable");
    let result = audit
        .traced("sipay unreachable", unreachable.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("sipay unreachable", &result);
    let state = audit
        .traced(
            "sipay unreachable refund_state",
            unreachable.refund_state(&PaymentRef::payment("INV-AUDIT-1")),
        )
        .await;
    if let Err(e) = &state {
        audit.error("sipay unreachable refund_state error", e);
    }

    // Retrying, through the reconciliation path: the refund is applied, the answer lost.
    let retrying = Retrying::new(
        sipay.clone(),
        RetryPolicy::default()
            .jitter(false)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .reconcile(true, Duration::from_millis(10)),
    );
    audit.debug("Retrying<Sipay>", &retrying);
    sim.add_payment("INV-AUDIT-R", dec("30.00"), Currency::Try);
    sim.arm(Fault::LostResponse, 1);
    let request = sipay_request("INV-AUDIT-R", "7.00", "audit-sipay-retrying");
    let result = audit
        .traced("Retrying<Sipay> LostResponse", retrying.refund(&request))
        .await;
    // The refund was applied and the answer lost: reconciliation must find it.
    assert!(result.is_ok(), "{result:?}");
    audit.result("Retrying<Sipay> LostResponse", &result);
    sim.disarm();

    audit.debug("SipayLedger", &sim.ledger());
    let requests = sim.requests();
    for request in requests.iter().take(5) {
        audit.debug("SimRequest (sipay)", request);
    }
    let mut tokens: Vec<String> = requests
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens.dedup();
    (sipay, tokens)
}

async fn audit_iyzico(audit: &mut Audit) -> (Iyzico, Option<String>) {
    let sim = IyzicoSim::start().await.unwrap();
    let creds = sim.credentials();
    audit.debug("IyzicoCredentials", &creds);
    let config = iyzico_config(&creds.base_url, creds.secret_key);
    audit.debug("IyzicoConfig", &config);
    let iyzico = Iyzico::new(config).unwrap();
    audit.debug("Iyzico", &iyzico);
    audit.debug("IyzicoSim", &sim);

    let item_request = |item: &str, payment: &str, amount: &str, reference: &str| {
        RefundRequest::builder(
            PaymentRef::item(item).in_payment(payment),
            try_money(amount),
        )
        .reference(reference)
        .build()
        .unwrap()
    };

    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let pid = payment.payment_id.clone();
    let item = payment.items[0].payment_transaction_id.clone();

    let request = item_request(&item, &pid, "10.00", "audit-iyzico-item");
    audit.debug("RefundRequest (iyzico item)", &request);
    let result = audit
        .traced("iyzico item refund", iyzico.refund(&request))
        .await;
    assert!(result.is_ok(), "{result:?}");
    audit.result("iyzico item refund", &result);

    let request = RefundRequest::builder(PaymentRef::payment(&pid), try_money("5.00"))
        .reference("audit-iyzico-payment")
        .build()
        .unwrap();
    let result = audit
        .traced("iyzico payment-level refund", iyzico.refund(&request))
        .await;
    audit.result("iyzico payment-level refund", &result);

    let request = item_request(&item, &pid, "999.00", "audit-iyzico-over");
    let result = audit
        .traced("iyzico over-refund", iyzico.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("iyzico over-refund", &result);

    let state = audit
        .traced(
            "iyzico refund_state",
            iyzico.refund_state(&PaymentRef::payment(&pid)),
        )
        .await;
    match &state {
        Ok(state) => audit.state("iyzico refund_state", state),
        Err(e) => panic!("iyzico refund_state failed: {e}"),
    }

    let to_void = sim.add_payment(Currency::Try, &[dec("25.0")]);
    let void = VoidRequest::builder(PaymentRef::payment(&to_void.payment_id))
        .reference("audit-iyzico-void")
        .build()
        .unwrap();
    audit.debug("VoidRequest", &void);
    let result = audit.traced("iyzico cancel", iyzico.void(&void)).await;
    assert!(result.is_ok(), "{result:?}");
    audit.result("iyzico cancel", &result);

    let wrong = Iyzico::new(iyzico_config(&creds.base_url, WRONG_SECRET_KEY)).unwrap();
    audit.debug("Iyzico (wrong secret)", &wrong);
    let request = item_request(&item, &pid, "1.00", "audit-iyzico-wrong-secret");
    let result = audit
        .traced("iyzico wrong secret (1000)", wrong.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("iyzico wrong secret (1000)", &result);

    for (n, fault) in [Fault::Http500, Fault::Malformed].into_iter().enumerate() {
        sim.arm(fault, 1);
        let label = format!("iyzico refund under {fault:?}");
        let request = item_request(&item, &pid, "1.00", &format!("audit-iyzico-fault-{n}"));
        let result = audit.traced(&label, iyzico.refund(&request)).await;
        assert!(result.is_err(), "{result:?}");
        audit.result(&label, &result);
        sim.disarm();
    }

    let unreachable = Iyzico::new(iyzico_config(&closed_port_url(), creds.secret_key)).unwrap();
    let request = item_request(&item, &pid, "1.00", "audit-iyzico-unreachable");
    let result = audit
        .traced("iyzico unreachable", unreachable.refund(&request))
        .await;
    assert!(result.is_err(), "{result:?}");
    audit.result("iyzico unreachable", &result);

    audit.debug("IyzicoLedger", &sim.ledger());
    let requests = sim.requests();
    for request in requests.iter().take(5) {
        audit.debug("SimRequest (iyzico)", request);
    }
    let header = requests
        .iter()
        .find_map(|r| r.header("authorization").map(str::to_owned));
    (iyzico, header)
}

#[tokio::test]
async fn no_secret_appears_in_traces_debug_display_errors_or_json() {
    let mut audit = Audit::default();

    let (sipay, tokens) = audit_sipay(&mut audit).await;
    let (iyzico, iyzico_header) = audit_iyzico(&mut audit).await;

    // Types printed outside any operation.
    audit.debug(
        "refund_sipay::Environment",
        &refund_sipay::Environment::Sandbox,
    );
    audit.debug(
        "refund_iyzico::Environment",
        &refund_iyzico::Environment::Sandbox,
    );
    audit.debug(
        "SipayConfig (production)",
        &SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_environment(refund_sipay::Environment::Production),
    );
    audit.debug(
        "IyzicoConfig (sandbox)",
        &IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_environment(refund_iyzico::Environment::Sandbox),
    );
    audit.debug("HashKeySigner", &HashKeySigner::new(SipaySim::APP_SECRET));
    audit.debug("RequestSigner", &RequestSigner::new(IyzicoSim::SECRET_KEY));
    let header = iyzico_header.expect("the iyzico simulator recorded an Authorization header");
    let parsed = parse_authorization(&header).expect("a real header parses");
    audit.debug("ParsedAuthorization", &parsed);

    let signer = HashKeySigner::new(SipaySim::APP_SECRET);
    let key = signer.sign(&["10.00", "INV-AUDIT-1", SipaySim::MERCHANT_KEY]);
    for (label, garbage, secret) in [
        ("garbage", "not a hash key at all", SipaySim::APP_SECRET),
        ("empty", "", SipaySim::APP_SECRET),
        ("wrong secret", key.as_str(), WRONG_APP_SECRET),
        ("mangled", &key[..key.len() / 2], SipaySim::APP_SECRET),
        ("bad base64", "%%%:::%%%:::%%%", SipaySim::APP_SECRET),
    ] {
        if let Err(e) = hash_key::validate_hash_key(garbage, secret) {
            audit.both(&format!("HashKeyError ({label})"), &e);
        }
    }

    audit.both("Money", &try_money("12.34"));
    audit.both(
        "PaymentRef",
        &PaymentRef::item("item-1").in_payment("pay-1"),
    );
    audit.both("MerchantRef", &MerchantRef::new("audit-ref").unwrap());
    audit.debug("Capabilities (sipay)", &sipay.capabilities());
    audit.debug("Capabilities (iyzico)", &iyzico.capabilities());
    let constants: [(&str, Capabilities); 2] = [
        ("refund_sipay::CAPABILITIES", refund_sipay::CAPABILITIES),
        ("refund_iyzico::CAPABILITIES", refund_iyzico::CAPABILITIES),
    ];
    for (label, capabilities) in &constants {
        audit.debug(label, capabilities);
    }
    let registry = ProviderRegistry::new()
        .with(Arc::new(sipay.clone()))
        .with(Arc::new(iyzico.clone()));
    audit.debug("ProviderRegistry", &registry);
    audit.debug(
        "Retrying<Iyzico>",
        &Retrying::new(iyzico, RetryPolicy::default()),
    );
    let token = tokens.first().map_or("no-token", String::as_str);
    audit.debug(
        "SipayAuth",
        &SipayAuth::new(token, SipaySim::APP_SECRET, SipaySim::MERCHANT_KEY),
    );
    audit.debug(
        "IyzicoAuth",
        &IyzicoAuth::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY),
    );

    // The secret set.
    assert!(
        !tokens.is_empty(),
        "the SiPay simulator recorded no bearer token"
    );
    let mut secrets: Vec<(String, String)> = vec![
        ("sipay app_secret".into(), SipaySim::APP_SECRET.into()),
        ("sipay merchant_key".into(), SipaySim::MERCHANT_KEY.into()),
        ("sipay wrong app_secret".into(), WRONG_APP_SECRET.into()),
        ("iyzico api_key".into(), IyzicoSim::API_KEY.into()),
        ("iyzico secret_key".into(), IyzicoSim::SECRET_KEY.into()),
        ("iyzico wrong secret_key".into(), WRONG_SECRET_KEY.into()),
    ];
    for (n, token) in tokens.iter().enumerate() {
        secrets.push((format!("sipay bearer token #{n}"), token.clone()));
    }

    assert!(
        audit.trace_bytes > 1024,
        "captured only {} bytes of trace output: is tracing captured at all?",
        audit.trace_bytes
    );
    assert!(
        audit.silent.is_empty(),
        "no trace output was captured for: {:?}",
        audit.silent
    );
    let leaks = audit.leaks(&secrets);
    assert!(
        leaks.is_empty(),
        "secrets leaked ({} places):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
