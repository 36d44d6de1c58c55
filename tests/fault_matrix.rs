//! The fault matrix: one table per provider of every transport and response fault we know of,
//! each row stating the error class the caller gets (`RefundError::kind()`), whether it is
//! retryable, whether the outcome is known, and whether the simulator's ledger shows the refund
//! applied. This is the single table `docs/reliability.md` reproduces; run with
//! `cargo test --test fault_matrix -- --nocapture` to see it printed.
//!
//! Faults the simulators can inject (`Fault`) run against `SipaySim` / `IyzicoSim`, so the
//! ledger is checked; faults they cannot (an unknown status code, a huge body, a stall in the
//! middle of the body, a closed port) run against wiremock or a raw TCP listener written
//! here, where there is no ledger ("n/a").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The matrix is printed on purpose: it is the test's report.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::time::Duration;

use refund_core::{
    Currency, Decimal, Money, PaymentRef, RefundError, RefundProvider, RefundRequest,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig, paths};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The client timeout every row uses: long enough for loopback, short enough for the test.
const TIMEOUT: Duration = Duration::from_secs(1);
/// When a late answer's refund is applied: after the client gave up.
const LATE: Duration = Duration::from_millis(1_600);

/// Where a row's requests go.
enum Backend {
    /// The provider simulator with `Fault` armed for one request; the ledger is checked.
    Sim(Fault),
    /// A loopback port nothing listens on.
    ClosedPort,
    /// wiremock answering every provider request with this response.
    Wiremock(ResponseTemplate),
    /// A raw TCP server that sends the headers and part of the body, then stalls.
    StallMidBody,
}

/// What the caller should see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expect {
    /// `"ok"` for a receipt, else `RefundError::kind()`.
    kind: &'static str,
    retryable: bool,
    outcome_known: bool,
    /// The provider code the error must keep verbatim, for unknown codes.
    code: Option<&'static str>,
    /// Whether the ledger shows the refund; `None` where there is no ledger.
    applied: Option<bool>,
}

struct Row {
    fault: &'static str,
    backend: Backend,
    expect: Expect,
    /// What the caller should do, for the printed table.
    action: &'static str,
}

/// What actually happened.
#[derive(Debug)]
struct Seen {
    kind: &'static str,
    retryable: bool,
    outcome_known: bool,
    code: Option<String>,
    applied: Option<bool>,
    error: String,
}

fn seen(result: &Result<(), RefundError>, applied: Option<bool>) -> Seen {
    match result {
        Ok(()) => Seen {
            kind: "ok",
            retryable: false,
            outcome_known: true,
            code: None,
            applied,
            error: String::new(),
        },
        Err(e) => Seen {
            kind: e.kind(),
            retryable: e.is_retryable(),
            outcome_known: e.is_outcome_known(),
            code: e.provider_code().map(str::to_owned),
            applied,
            error: e.to_string(),
        },
    }
}

const fn expect(
    kind: &'static str,
    retryable: bool,
    outcome_known: bool,
    applied: Option<bool>,
) -> Expect {
    Expect {
        kind,
        retryable,
        outcome_known,
        code: None,
        applied,
    }
}

const UNKNOWN_NOT_APPLIED: Expect = expect("outcome_unknown", false, false, Some(false));
const UNKNOWN_APPLIED: Expect = expect("outcome_unknown", false, false, Some(true));
const UNKNOWN_NO_LEDGER: Expect = expect("outcome_unknown", false, false, None);
const RECONCILE: &str = "look the refund up by its reference (refund_state) before resending";

/// The rows both providers share; `auth_rows` and `code_row` add the provider-specific ones.
fn common_rows() -> Vec<Row> {
    vec![
        Row {
            fault: "connect refused (closed port)",
            backend: Backend::ClosedPort,
            expect: expect("unreachable", true, true, None),
            action: "retry: nothing was sent",
        },
        Row {
            fault: "timeout before headers",
            backend: Backend::Sim(Fault::Timeout),
            expect: UNKNOWN_NOT_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "timeout mid-body",
            backend: Backend::StallMidBody,
            expect: UNKNOWN_NO_LEDGER,
            action: RECONCILE,
        },
        Row {
            fault: "connection reset",
            backend: Backend::Sim(Fault::Reset),
            expect: UNKNOWN_NOT_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "lost response (applied, then dropped)",
            backend: Backend::Sim(Fault::LostResponse),
            expect: UNKNOWN_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "HTTP 500 (JSON error)",
            backend: Backend::Sim(Fault::Http500),
            expect: UNKNOWN_NOT_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "HTTP 502 (HTML page)",
            backend: Backend::Sim(Fault::Html502),
            expect: UNKNOWN_NOT_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "HTTP 503 (HTML page)",
            backend: Backend::Sim(Fault::Http503),
            expect: UNKNOWN_NOT_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "HTTP 429 (Retry-After: 1)",
            backend: Backend::Sim(Fault::Http429),
            expect: expect("rate_limited", true, true, Some(false)),
            action: "retry after Retry-After: nothing was processed",
        },
        Row {
            fault: "malformed JSON (applied)",
            backend: Backend::Sim(Fault::Malformed),
            expect: UNKNOWN_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "empty 200 body (applied)",
            backend: Backend::Sim(Fault::Empty),
            expect: UNKNOWN_APPLIED,
            action: RECONCILE,
        },
        Row {
            fault: "answered after the client's timeout (applied at 1.6 s)",
            backend: Backend::Sim(Fault::Delay(LATE)),
            expect: UNKNOWN_APPLIED,
            action: "reconcile: the provider applied it after the client gave up",
        },
        Row {
            fault: "bank refused, answer lost (failed entry)",
            backend: Backend::Sim(Fault::FailLostResponse),
            expect: UNKNOWN_NOT_APPLIED,
            action: "reconcile: the lookup lists it as failed",
        },
        Row {
            fault: "huge body (2 MiB, cap 1 MiB)",
            backend: Backend::Wiremock(ResponseTemplate::new(200).set_body_raw(
                format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20)),
                "application/json",
            )),
            expect: UNKNOWN_NO_LEDGER,
            action: RECONCILE,
        },
    ]
}

fn sipay_rows() -> Vec<Row> {
    let mut rows = common_rows();
    rows.push(Row {
        fault: "expired token (401 Unauthenticated.)",
        backend: Backend::Sim(Fault::TokenExpired),
        expect: expect("ok", false, true, Some(true)),
        action: "nothing: the client refreshed its token once and resent",
    });
    rows.push(Row {
        fault: "bank refused (49 answered, failed entry)",
        backend: Backend::Sim(Fault::Fail),
        expect: Expect {
            code: Some("49"),
            ..expect("declined", false, true, Some(false))
        },
        action: "show the provider's code and text; do not resend as is",
    });
    rows.push(Row {
        fault: "reused refund_transaction_id (104)",
        backend: Backend::Wiremock(ResponseTemplate::new(200).set_body_json(json!({
            "status_code": 104,
            "status_description": "Return transaction ID must be unique"
        }))),
        expect: Expect {
            code: Some("104"),
            ..expect("duplicate_reference", false, false, None)
        },
        action: "reconcile: an earlier attempt with this reference reached SiPay",
    });
    rows.push(Row {
        fault: "unknown status_code 777",
        backend: Backend::Wiremock(
            ResponseTemplate::new(200).set_body_json(
                json!({"status_code": 777, "status_description": "Brand new failure"}),
            ),
        ),
        expect: UNKNOWN_NO_LEDGER,
        action: "reconcile: a code outside SiPay's table may have moved money",
    });
    rows
}

fn iyzico_rows() -> Vec<Row> {
    let mut rows = common_rows();
    rows.push(Row {
        fault: "signature rejected (1000 Geçersiz imza)",
        backend: Backend::Sim(Fault::TokenExpired),
        expect: Expect {
            code: Some("1000"),
            ..expect("authentication_rejected", false, true, Some(false))
        },
        action: "fix the credentials: nothing was processed",
    });
    rows.push(Row {
        fault: "HTTP 401 (HTML page)",
        backend: Backend::Wiremock(
            ResponseTemplate::new(401).set_body_raw("<html>401</html>", "text/html"),
        ),
        expect: expect("authentication_rejected", false, true, None),
        action: "fix the credentials: nothing was processed",
    });
    rows.push(Row {
        fault: "bank refused (10246 answered, failed entry)",
        backend: Backend::Sim(Fault::Fail),
        expect: Expect {
            code: Some("10246"),
            ..expect("declined", true, true, Some(false))
        },
        action: "retry later: iyzico marks the decline retryable",
    });
    rows.push(Row {
        fault: "unknown errorCode 99999",
        // The conversation id is the row's reference (see `iyzico_row`).
        backend: Backend::Wiremock(ResponseTemplate::new(200).set_body_json(json!({
            "status": "failure", "errorCode": "99999", "errorMessage": "Yeni bir hata",
            "locale": "tr", "systemTime": 1_527_959_985_667_u64, "conversationId": "fm-iyzico"
        }))),
        expect: Expect {
            code: Some("99999"),
            ..expect("declined", false, true, None)
        },
        action: "show the provider's code and text; do not resend as is",
    });
    rows
}

/// Waits until a late answer's refund has been applied, so the ledger tells the whole story.
async fn settle(fault: Fault) {
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay.saturating_sub(TIMEOUT) + Duration::from_millis(300)).await;
    }
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A raw HTTP/1.1 server: answers SiPay's token request properly, and any other request with
/// headers promising 100 bytes, the first few of them, then nothing for 30 s.
async fn stall_mid_body_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(request_line) = read_request(&mut socket).await else {
                    return;
                };
                if request_line.contains(paths::TOKEN) {
                    let body = json!({
                        "status_code": 100,
                        "status_description": "Successfully Generated token",
                        "data": {"token": "raw-token", "is_3d": 1, "expires_at": "2099-01-01 00:00:00"}
                    })
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                } else {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sta")
                        .await;
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    (url, task)
}

/// Reads one request (head and `Content-Length` body); returns its request line.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return head.lines().next().map(str::to_owned);
            }
        }
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn sipay_row(row: &Row) -> Seen {
    let reference = "fm-sipay";
    let request = RefundRequest::builder(
        PaymentRef::payment("INV-FM"),
        Money::parse("10.00", Currency::Try).unwrap(),
    )
    .reference(reference)
    .build()
    .unwrap();
    let client = |base: &str| {
        Sipay::new(
            SipayConfig::new(
                SipaySim::APP_ID,
                SipaySim::APP_SECRET,
                SipaySim::MERCHANT_KEY,
            )
            .with_base_url(base)
            .unwrap()
            .with_timeout(TIMEOUT),
        )
        .unwrap()
    };
    match &row.backend {
        Backend::Sim(fault) => {
            let sim = SipaySim::start().await.unwrap();
            sim.add_payment("INV-FM", dec("100.00"), Currency::Try);
            sim.arm(*fault, 1);
            let result = client(&sim.base_url()).refund(&request).await.map(drop);
            settle(*fault).await;
            let applied = sim
                .payment("INV-FM")
                .unwrap()
                .refunds
                .iter()
                .any(|r| r.refund_transaction_id.as_deref() == Some(reference));
            seen(&result, Some(applied))
        }
        Backend::ClosedPort => {
            let result = client(&closed_port_url()).refund(&request).await.map(drop);
            seen(&result, None)
        }
        Backend::Wiremock(response) => {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path(paths::TOKEN))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "status_code": 100,
                    "status_description": "Successfully Generated token",
                    "data": {"token": "wm-token", "is_3d": 1, "expires_at": "2099-01-01 00:00:00"}
                })))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path(paths::REFUND))
                .respond_with(response.clone())
                .mount(&server)
                .await;
            let result = client(&server.uri()).refund(&request).await.map(drop);
            seen(&result, None)
        }
        Backend::StallMidBody => {
            let (url, task) = stall_mid_body_server().await;
            let result = client(&url).refund(&request).await.map(drop);
            task.abort();
            seen(&result, None)
        }
    }
}

async fn iyzico_row(row: &Row) -> Seen {
    let reference = "fm-iyzico";
    let client = |base: &str| {
        Iyzico::new(
            IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
                .with_base_url(base)
                .unwrap()
                .with_timeout(TIMEOUT),
        )
        .unwrap()
    };
    let request = |item: &str, payment: &str| {
        RefundRequest::builder(
            PaymentRef::item(item).in_payment(payment),
            Money::parse("10.00", Currency::Try).unwrap(),
        )
        .reference(reference)
        .build()
        .unwrap()
    };
    match &row.backend {
        Backend::Sim(fault) => {
            let sim = IyzicoSim::start().await.unwrap();
            let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
            let item = payment.items[0].payment_transaction_id.clone();
            sim.arm(*fault, 1);
            let result = client(&sim.base_url())
                .refund(&request(&item, &payment.payment_id))
                .await
                .map(drop);
            settle(*fault).await;
            let applied = sim
                .payment(&payment.payment_id)
                .unwrap()
                .refunds()
                .any(|(_, r)| r.conversation_id.as_deref() == Some(reference));
            seen(&result, Some(applied))
        }
        Backend::ClosedPort => {
            let result = client(&closed_port_url())
                .refund(&request("11433038", "10844367"))
                .await
                .map(drop);
            seen(&result, None)
        }
        Backend::Wiremock(response) => {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(response.clone())
                .mount(&server)
                .await;
            let result = client(&server.uri())
                .refund(&request("11433038", "10844367"))
                .await
                .map(drop);
            seen(&result, None)
        }
        Backend::StallMidBody => {
            let (url, task) = stall_mid_body_server().await;
            let result = client(&url)
                .refund(&request("11433038", "10844367"))
                .await
                .map(drop);
            task.abort();
            seen(&result, None)
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn applied_text(a: Option<bool>) -> &'static str {
    a.map_or("n/a", yes_no)
}

/// Compares every row, prints the table, and fails naming every row that differs.
fn check(provider: &str, rows: &[Row], seen: &[Seen]) {
    let mut table = format!(
        "\n{provider} fault matrix\n| fault | kind | retryable | outcome known | applied | what the caller does |\n|---|---|---|---|---|---|\n"
    );
    let mut failures = Vec::new();
    for (row, got) in rows.iter().zip(seen) {
        let e = row.expect;
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} |",
            row.fault,
            got.kind,
            yes_no(got.retryable),
            yes_no(got.outcome_known),
            applied_text(got.applied),
            row.action
        )
        .unwrap();
        let mut wrong = Vec::new();
        if got.kind != e.kind {
            wrong.push(format!("kind {} (want {})", got.kind, e.kind));
        }
        if got.retryable != e.retryable {
            wrong.push(format!(
                "retryable {} (want {})",
                got.retryable, e.retryable
            ));
        }
        if got.outcome_known != e.outcome_known {
            wrong.push(format!(
                "outcome_known {} (want {})",
                got.outcome_known, e.outcome_known
            ));
        }
        if let Some(code) = e.code
            && got.code.as_deref() != Some(code)
        {
            wrong.push(format!("code {:?} (want {code})", got.code));
        }
        if got.applied != e.applied {
            wrong.push(format!(
                "applied {} (want {})",
                applied_text(got.applied),
                applied_text(e.applied)
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{provider} row `{}`: {} [error: {}]",
                row.fault,
                wrong.join(", "),
                got.error
            ));
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn sipay_fault_matrix_classifies_every_fault() {
    let rows = sipay_rows();
    let mut seen = Vec::new();
    for row in &rows {
        seen.push(sipay_row(row).await);
    }
    check("sipay", &rows, &seen);
}

#[tokio::test]
async fn iyzico_fault_matrix_classifies_every_fault() {
    let rows = iyzico_rows();
    let mut seen = Vec::new();
    for row in &rows {
        seen.push(iyzico_row(row).await);
    }
    check("iyzico", &rows, &seen);
}

/// What reconciliation says about a lost answer while the provider's lookup lags 1 s behind:
/// at once, "not yet known" (never "safe to resend"); after the lag, "applied". And about a
/// refused refund whose answer was lost: "not applied". Printed as the lag table of
/// `docs/reliability.md`.
#[tokio::test]
async fn lagging_lookups_and_failed_entries_reconcile_without_guessing() {
    use refund_core::{Reconciler, Verdict};
    use std::time::SystemTime;
    const LAG: Duration = Duration::from_secs(1);
    let settle = Duration::from_secs(5);

    let sipay_sim = SipaySim::start().await.unwrap();
    let sipay = Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(&sipay_sim.base_url())
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_settle_time(settle),
    )
    .unwrap();
    let iyzico_sim = IyzicoSim::start().await.unwrap();
    let iyzico = Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(&iyzico_sim.base_url())
            .unwrap()
            .with_timeout(TIMEOUT)
            .with_settle_time(settle),
    )
    .unwrap();
    sipay_sim.set_lookup_lag(LAG);
    iyzico_sim.set_lookup_lag(LAG);

    let mut table = String::from(
        "\nreconciliation\n| provider | fault | verdict at once | verdict after the lag |\n|---|---|---|---|\n",
    );
    for (n, fault) in [Fault::LostResponse, Fault::FailLostResponse]
        .into_iter()
        .enumerate()
    {
        let invoice = format!("INV-LAG-{n}");
        sipay_sim.add_payment(&invoice, dec("100.00"), Currency::Try);
        let payment = iyzico_sim.add_payment(Currency::Try, &[dec("100.0")]);
        let cases: [(&dyn RefundProvider, PaymentRef); 2] = [
            (&sipay, PaymentRef::payment(invoice)),
            (
                &iyzico,
                PaymentRef::item(payment.items[0].payment_transaction_id.clone())
                    .in_payment(payment.payment_id.clone()),
            ),
        ];
        for (provider, payment) in cases {
            let request = RefundRequest::builder(
                payment.clone(),
                Money::parse("10.00", Currency::Try).unwrap(),
            )
            .reference(format!("lag-{}-{n}", provider.name()))
            .build()
            .unwrap();
            sipay_sim.arm(fault, 1);
            iyzico_sim.arm(fault, 1);
            let attempted_at = SystemTime::now();
            let result = provider.refund(&request).await;
            sipay_sim.disarm();
            iyzico_sim.disarm();
            assert!(
                matches!(&result, Err(e) if !e.is_outcome_known()),
                "{result:?}"
            );
            let reconciler = Reconciler::for_provider(provider);
            let attempt = refund_core::Attempt::first(request.reference().clone(), attempted_at);
            let look = || reconciler.look_up(provider, &payment, &attempt, SystemTime::now);
            let at_once = look().await.unwrap().verdict;
            tokio::time::sleep(LAG + Duration::from_millis(200)).await;
            let later = look().await.unwrap().verdict;
            writeln!(
                table,
                "| {} | {fault} | {} | {} |",
                provider.name(),
                at_once.kind(),
                later.kind()
            )
            .unwrap();
            match fault {
                Fault::LostResponse => {
                    assert!(
                        matches!(at_once, Verdict::NotYetKnown { .. }),
                        "{}: {at_once:?}",
                        provider.name()
                    );
                    assert!(
                        matches!(later, Verdict::Applied(_)),
                        "{}: {later:?}",
                        provider.name()
                    );
                }
                _ => {
                    assert!(
                        !matches!(at_once, Verdict::Applied(_) | Verdict::SafeToResend),
                        "{}: {at_once:?}",
                        provider.name()
                    );
                    assert!(
                        matches!(later, Verdict::NotApplied(_)),
                        "{}: {later:?}",
                        provider.name()
                    );
                }
            }
        }
    }
    println!("{table}");
}
