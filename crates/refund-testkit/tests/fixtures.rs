//! Fixtures: valid JSON, and the documented ones byte-identical to the provider documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;

use refund_testkit::fixtures::{self, Fixture, iyzico, sipay};

/// The `{` … `}` blocks of a seed document: from a line that is exactly `{` to the next line
/// that is exactly `}`, with the newline after it (the fixture files end with one).
fn json_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.split('\n') {
        match current.as_mut() {
            None if line == "{" => current = Some("{\n".to_owned()),
            None => {}
            Some(block) => {
                block.push_str(line);
                block.push('\n');
                if line == "}" {
                    blocks.extend(current.take());
                }
            }
        }
    }
    blocks
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds")
}

#[test]
fn every_fixture_is_valid_json() {
    for f in fixtures::all() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(f.body);
        assert!(
            parsed.is_ok(),
            "{}/{} is not JSON: {parsed:?}",
            f.provider,
            f.name
        );
        assert_ne!(
            f.json(),
            serde_json::Value::Null,
            "{}/{}",
            f.provider,
            f.name
        );
    }
}

#[test]
fn every_fixture_names_its_source_and_operation() {
    for f in fixtures::all() {
        assert!(!f.source.is_empty(), "{}", f.name);
        assert!(!f.operation.is_empty(), "{}", f.name);
        assert!(matches!(f.provider, "sipay" | "iyzico"));
        assert!((100..600).contains(&f.status));
        if f.documented {
            assert!(f.source.starts_with("seeds/"), "{}: {}", f.name, f.source);
        }
    }
}

#[test]
fn fixture_files_on_disk_are_all_registered() {
    for provider in ["sipay", "iyzico"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(provider);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let f = fixtures::find(provider, &stem)
                .unwrap_or_else(|| panic!("{} has no Fixture const", path.display()));
            assert_eq!(f.body, std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn documented_fixtures_are_byte_identical_to_the_seed_documents() {
    let dir = seeds_dir();
    if !dir.is_dir() {
        eprintln!("skipped: seed documents not found at {}", dir.display());
        return;
    }
    let documented: Vec<&Fixture> = fixtures::all().filter(|f| f.documented).collect();
    assert_eq!(
        documented.len(),
        4,
        "SiPay EN/TR success, TR failure, iyzico success"
    );
    for f in documented {
        let file = f
            .source
            .split(':')
            .next()
            .unwrap()
            .trim_start_matches("seeds/");
        let doc = std::fs::read_to_string(dir.join(file)).unwrap();
        let blocks = json_blocks(&doc);
        assert!(
            blocks.iter().any(|b| b == f.body),
            "{}/{} differs from every JSON block of {file}",
            f.provider,
            f.name
        );
    }
}

#[test]
fn documented_responses_carry_their_status_codes() {
    assert_eq!(
        sipay::REFUND_SUCCESS_EN.json()["ref_number"],
        "602800085396"
    );
    assert_eq!(sipay::REFUND_SUCCESS_TR.json()["status_code"], 100);
    assert_eq!(sipay::REFUND_FAILED_TR.json()["status_code"], 49);
    assert_eq!(iyzico::REFUND_SUCCESS.json()["status"], "success");
    assert_eq!(sipay::UNAUTHENTICATED.status, 401);
    assert_eq!(iyzico::FAILURE_INVALID_SIGNATURE_HTTP_400.status, 400);
}

#[test]
fn signed_iyzico_fixtures_carry_a_correct_response_signature() {
    for (f, price) in [
        (iyzico::REFUND_SUCCESS_SIGNED, "0.5"),
        (iyzico::REFUND_V2_SUCCESS, "15"),
    ] {
        let j = f.json();
        let fields = [
            j["paymentId"].as_str().unwrap(),
            price,
            j["currency"].as_str().unwrap(),
            j["conversationId"].as_str().unwrap(),
        ];
        assert_eq!(
            refund_iyzico::signature::response_signature("secretKey", &fields),
            j["signature"].as_str().unwrap(),
            "{}",
            f.name
        );
    }
}

#[tokio::test]
async fn mounted_fixture_answers_with_its_status_content_type_and_exact_body() {
    let server = wiremock::MockServer::start().await;
    sipay::UNAUTHENTICATED
        .mount(&server, "POST", "/ccpayment/api/refund")
        .await;
    let reply = reqwest::Client::new()
        .post(format!("{}/ccpayment/api/refund", server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
    assert_eq!(
        reply.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(reply.text().await.unwrap(), sipay::UNAUTHENTICATED.body);
}
