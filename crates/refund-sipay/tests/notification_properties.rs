//! Properties of the refund notification verifier: a notification signed with the secret
//! always verifies, any single changed field is refused, another secret never verifies, and
//! arbitrary input is an error, never a panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use refund_core::{Currency, Money, NotificationStatus};
use refund_sipay::hash_key::generate;
use refund_sipay::notification::{NotificationErrorKind, NotificationVerifier};

/// Field text as SiPay could send it: anything but the `|` separator, never empty.
fn text() -> impl Strategy<Value = String> {
    "[^|]{1,40}"
}

/// An amount as text: up to 7 integer digits, no, one or two decimals.
fn amount() -> impl Strategy<Value = String> {
    "[1-9][0-9]{0,6}(\\.[0-9]{1,2})?"
}

fn status() -> impl Strategy<Value = String> {
    prop_oneof![Just("Completed".to_owned()), text()]
}

/// Percent-encodes everything but unreserved characters, as a form encoder does.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

struct Signed {
    status: String,
    amount: String,
    invoice_id: String,
    order_id: String,
    hash_key: String,
}

impl Signed {
    fn new(
        secret: &str,
        status: String,
        amount: String,
        invoice_id: String,
        order_id: String,
    ) -> Self {
        let hash_key = generate(secret, &[&status, &amount, &invoice_id, &order_id]);
        Signed {
            status,
            amount,
            invoice_id,
            order_id,
            hash_key,
        }
    }

    fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("invoice_id", self.invoice_id.clone()),
            ("order_id", self.order_id.clone()),
            ("amount", self.amount.clone()),
            ("status", self.status.clone()),
            ("hash_key", self.hash_key.clone()),
        ]
    }

    fn body(&self) -> String {
        let fields = self.fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form(&pairs)
    }
}

proptest! {
    #[test]
    fn a_signed_notification_always_verifies(
        secret in "[ -~]{1,64}",
        status in status(), amount in amount(), invoice_id in text(), order_id in text(),
    ) {
        let signed = Signed::new(&secret, status.clone(), amount.clone(), invoice_id.clone(), order_id.clone());
        let verifier = NotificationVerifier::new(&secret);
        let from_body = verifier.verify_form(signed.body().as_bytes()).unwrap();
        let from_map = verifier.verify_fields(signed.fields()).unwrap();
        prop_assert_eq!(&from_body, &from_map);
        prop_assert_eq!(&from_body.invoice_id, &invoice_id);
        prop_assert_eq!(&from_body.order_id, &order_id);
        prop_assert_eq!(from_body.amount, Money::parse(&amount, Currency::Try).unwrap());
        let want = if status == "Completed" {
            NotificationStatus::Completed
        } else {
            NotificationStatus::Unrecognised(status)
        };
        prop_assert_eq!(from_body.status, want);
    }

    #[test]
    fn any_single_changed_field_is_refused(
        status in status(), amount in amount(), invoice_id in text(), order_id in text(),
        which in 0usize..5, replacement in text(), other_amount in amount(), at in 0usize..200,
    ) {
        let secret = "b46a67571aa1e7ef5641dc3fa6f1712a";
        let signed = Signed::new(secret, status, amount, invoice_id, order_id);
        let mut fields = signed.fields();
        let changed = match which {
            // The amount changes value (10.5 for 10.50 is the same amount, and accepted).
            2 => {
                let same = Money::parse(&other_amount, Currency::Try).unwrap()
                    == Money::parse(&signed.amount, Currency::Try).unwrap();
                prop_assume!(!same);
                other_amount
            }
            // One character of the hash_key changes (a space would be read back as '+').
            4 => {
                let key: Vec<char> = signed.hash_key.chars().collect();
                let i = at % key.len();
                let c = replacement.chars().next().unwrap();
                prop_assume!(c != key[i] && !(c == ' ' && key[i] == '+'));
                let mut key = key;
                key[i] = c;
                key.into_iter().collect()
            }
            _ => {
                prop_assume!(replacement != fields[which].1);
                replacement
            }
        };
        fields[which].1 = changed;
        let verifier = NotificationVerifier::new(secret);
        let result = verifier.verify_fields(fields.clone());
        prop_assert!(result.is_err(), "field {} changed and still verified", fields[which].0);
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        prop_assert!(verifier.verify_form(form(&pairs).as_bytes()).is_err());
    }

    #[test]
    fn another_secret_never_verifies(
        secret in "[a-z0-9]{32}", other in "[a-z0-9]{32}",
        amount in amount(), invoice_id in text(),
    ) {
        prop_assume!(secret != other);
        let signed = Signed::new(&secret, "Completed".into(), amount, invoice_id, "VP1".into());
        let e = NotificationVerifier::new(&other).verify_form(signed.body().as_bytes()).unwrap_err();
        prop_assert!(e.is_forged());
        prop_assert!(!e.to_string().contains(&secret) && !e.to_string().contains(&other));
    }

    #[test]
    fn arbitrary_bodies_are_errors_not_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = NotificationVerifier::new("secret").verify_form(&body);
    }

    #[test]
    fn arbitrary_fields_are_errors_not_panics(
        values in proptest::collection::vec(".{0,60}", 5),
        hash_key in "[0-9a-f]{16}:[0-9a-f]{4}:[A-Za-z0-9+_=]{0,80}",
    ) {
        let fields = [
            ("invoice_id", values[0].as_str()),
            ("order_id", values[1].as_str()),
            ("amount", values[2].as_str()),
            ("status", values[3].as_str()),
            ("hash_key", hash_key.as_str()),
            ("extra", values[4].as_str()),
        ];
        let e = NotificationVerifier::new("secret").verify_fields(fields);
        prop_assert!(e.is_err());
    }

    #[test]
    fn a_truncated_body_is_refused(cut in 1usize..300) {
        let signed = Signed::new("s", "Completed".into(), "10.50".into(), "INV-1".into(), "VP1".into());
        let body = signed.body();
        let cut = cut % body.len();
        let result = NotificationVerifier::new("s").verify_form(&body.as_bytes()[..body.len() - cut.max(1)]);
        if let Err(e) = &result {
            prop_assert!(!matches!(e.kind(), NotificationErrorKind::DuplicateField(_)));
        }
        prop_assert!(result.is_err());
    }
}
