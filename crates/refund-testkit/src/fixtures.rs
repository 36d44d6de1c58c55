//! Provider responses kept as files beside the tests, one file per response.
//!
//! Every file lives under `crates/refund-testkit/fixtures/<provider>/` and is compiled in with
//! `include_str!`, so a fixture is a `&'static str` that is byte-for-byte the file. Fixtures
//! marked [`Fixture::documented`] are copied verbatim from the provider's own documentation
//! (the seed documents); a test checks they still match it byte for byte. The others are
//! shaped after what the SDKs and integrations show, and their [`Fixture::source`] says where
//! the code and shape come from and what is our own guess.
//!
//! ```
//! use refund_testkit::fixtures::{self, sipay};
//!
//! let success = sipay::REFUND_SUCCESS_EN;
//! assert!(success.documented);
//! assert_eq!(success.json()["status_code"], 100);
//! assert!(fixtures::all().any(|f| f.name == "refund_failed_tr"));
//! ```
//!
//! With wiremock (feature `wiremock`), one call mounts a fixture as the answer to a route:
//!
//! ```no_run
//! # async fn demo() {
//! use refund_testkit::fixtures::iyzico;
//! let server = wiremock::MockServer::start().await;
//! iyzico::REFUND_SUCCESS.mount(&server, "POST", "/payment/refund").await;
//! # }
//! ```

#[cfg(feature = "wiremock")]
use wiremock::matchers::{method, path};
#[cfg(feature = "wiremock")]
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One provider response: the exact body, the HTTP status it comes with, and where it is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixture {
    /// File stem, e.g. `refund_success_en` (the file is `fixtures/<provider>/<name>.json`).
    pub name: &'static str,
    /// `"sipay"` or `"iyzico"`.
    pub provider: &'static str,
    /// The operation that answers with it: `token`, `refund`, `refund_v2`, `cancel`,
    /// `check_status`, `payment_details`, or `any` (authentication failures).
    pub operation: &'static str,
    /// The HTTP status the provider sends it with.
    pub status: u16,
    /// The body, byte for byte as in the file.
    pub body: &'static str,
    /// `true` when the body is copied verbatim from the provider's documentation.
    pub documented: bool,
    /// Where the response comes from. For documented fixtures it starts with the seed
    /// document's path (`seeds/<file>.md`).
    pub source: &'static str,
}

impl Fixture {
    /// The body parsed as JSON.
    ///
    /// Every fixture is valid JSON (a test proves it), so this never yields the fallback
    /// `Value::Null` for the fixtures in this crate.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The fixture as a wiremock response: its HTTP status, the body bytes unchanged, and
    /// `Content-Type: application/json`.
    #[cfg(feature = "wiremock")]
    pub fn response(&self) -> ResponseTemplate {
        ResponseTemplate::new(self.status).set_body_raw(self.body.as_bytes(), "application/json")
    }

    /// Mounts the fixture on `server` as the answer to `method` `path` (exact path match).
    #[cfg(feature = "wiremock")]
    pub async fn mount(&self, server: &MockServer, http_method: &str, route: &str) {
        Mock::given(method(http_method))
            .and(path(route))
            .respond_with(self.response())
            .named(format!("fixture {}/{}", self.provider, self.name))
            .mount(server)
            .await;
    }
}

macro_rules! fixtures {
    ($provider:literal; $( $(#[$doc:meta])* $konst:ident = $file:literal, $op:literal, $status:literal, $documented:literal, $source:literal; )*) => {
        $(
            $(#[$doc])*
            pub const $konst: Fixture = Fixture {
                name: $file,
                provider: $provider,
                operation: $op,
                status: $status,
                body: include_str!(concat!("../fixtures/", $provider, "/", $file, ".json")),
                documented: $documented,
                source: $source,
            };
        )*
        /// Every fixture of this provider.
        pub const ALL: &[Fixture] = &[$($konst),*];
    };
}

/// SiPay responses (`/ccpayment/api/...`).
///
/// Whether SiPay sends failures with HTTP 200 or 4xx is not documented; these fixtures use 200
/// and put the outcome in `status_code`, which is what a client must read either way.
///
/// Every SiPay fixture's [`Fixture::source`] names where its shape comes from, in up to three
/// parts separated by `; `:
/// - `seeds/<file>.md: …`: copied from (or shaped after) a seed document;
/// - `sdk: <repo> <path>: …`: an official or community SDK file (paths as in
///   `../shared/providers/sdk-models.md`, Sources: `sipay-tr/sipay-php-sdk` is SiPay's
///   official PHP SDK, `muhammedaksam/sipay-node` an unofficial node SDK);
/// - `assumed: …`: what no source documents (wording, entry shapes, status words). A test
///   checks every source has at least one of the three.
///
/// Descriptions marked "the PHP SDK's text" are `ResponseStatusCode::DESCRIPTIONS` verbatim:
/// the SDK's own text for the code, not necessarily what the server sends.
pub mod sipay {
    use super::Fixture;

    fixtures! { "sipay";
        /// Refund success from the English reference page, with `ref_number`.
        REFUND_SUCCESS_EN = "refund_success_en", "refund", 200, true,
            "seeds/sipay-refund-en.md: Refund, Response Example \"200 - Success\"";
        /// Refund success from the Turkish "İşlem İadesi" page (empty `ref_no`, no `ref_number`).
        REFUND_SUCCESS_TR = "refund_success_tr", "refund", 200, true,
            "seeds/sipay-refund-tr.md: \"Başarılı Yanıt\"";
        /// Refund failure, status_code 49 "Refund Failed", from the Turkish page.
        REFUND_FAILED_TR = "refund_failed_tr", "refund", 200, true,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\"";
        /// Token issued.
        TOKEN_SUCCESS = "token_success", "token", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TokenMapper.php (data.token) and tests/Sipay/Resources/TokenTest.php (status_code 100, data.token, is_3d 1, expires_at \"2025-01-14 22:53:53\"); assumed: the English status_description (the SDK's test says \"Successful\") and the token, a made-up JWT";
        /// Token refused: status_code 30 "Invalid Credentials", `data: null`.
        TOKEN_INVALID_CREDENTIALS = "token_invalid_credentials", "token", 200, false,
            "sdk: sipay-tr/sipay-php-sdk tests/Sipay/Resources/TokenTest.php testRetrieveWithInvalidCredentials (status_code 30, data null); assumed: the English wording (the SDK's test says \"Geçersiz kimlik bilgileri\")";
        /// Token refused: status_code 1, validation error (missing app_id).
        TOKEN_VALIDATION_ERROR = "token_validation_error", "token", 200, false,
            "sdk: sipay-tr/sipay-php-sdk tests/Sipay/Resources/TokenTest.php testRetrieveWithMissingAppId (status_code 1, data null); assumed: the English wording, Laravel's default (the SDK's test says \"app id alanı gereklidir.\")";
        /// HTTP 401 for an expired or unknown bearer token.
        UNAUTHENTICATED = "unauthenticated", "any", 401, false,
            "assumed: SiPay runs Laravel Passport, whose 401 body is {\"message\":\"Unauthenticated.\"} (SiPay's docs list 401 only as \"Authentication error\"); sdk: sipay-tr/sipay-php-sdk src/Sipay/SipayResource.php (handleErrorResponse: HTTP 401 is AuthenticationException)";
        /// Refund failure 49 with the long English description of its causes.
        REFUND_FAILED_LONG_DESCRIPTION = "refund_failed_long_description", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: muhammedaksam/sipay-node src/types/status-codes.ts (49's English causes: over-refund, no sale, balance, non-refundable status, 30 s between refunds); assumed: the exact wording";
        /// Refund accepted and pending: status_code 101 "Refund request created".
        REFUND_PENDING = "refund_pending", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (101 REFUND_REQUEST_CREATED); assumed: the English wording";
        /// Duplicate refund_transaction_id: status_code 104. A client answers
        /// `DuplicateReference` (look it up), never a decline.
        REFUND_DUPLICATE_TRANSACTION_ID = "refund_duplicate_transaction_id", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (104 REFUND_TRANSACTION_ID_NOT_UNIQUE, \"İade işlem ID si benzersiz olmalı\"); assumed: the English wording, and that the answer carries no data of the first refund";
        /// Partial refund not allowed: status_code 110.
        REFUND_PARTIAL_NOT_ALLOWED = "refund_partial_not_allowed", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (110 PARTIAL_REFUND_NOT_ALLOWED); assumed: the English wording";
        /// No such transaction: status_code 31.
        REFUND_TRANSACTION_NOT_FOUND = "refund_transaction_not_found", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (31 TRANSACTION_NOT_FOUND) and src/Sipay/Resources/Mapper/SipayResourceMapper.php (status_code, status_description); assumed: the English wording and the echoed invoice_id";
        /// Invalid invoice id: status_code 32.
        REFUND_INVALID_INVOICE_ID = "refund_invalid_invoice_id", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (32 INVALID_INVOICE_ID); assumed: the English wording and the empty invoice_id";
        /// Wrong app_id/app_secret on a refund: status_code 30.
        REFUND_INVALID_CREDENTIALS = "refund_invalid_credentials", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (30 INVALID_CREDENTIALS); assumed: the English wording";
        /// hash_key does not match amount/currency/invoice: status_code 68.
        REFUND_HASH_MISMATCH = "refund_hash_mismatch", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (68 HASH_KEY_MISMATCH); sdk: muhammedaksam/sipay-node src/types/status-codes.ts (68's causes); assumed: the English wording";
        /// hash_key cannot be decrypted: status_code 90.
        REFUND_INVALID_HASH = "refund_invalid_hash", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (90 INVALID_HASH_KEY); assumed: the English wording";
        /// hash_key's merchant key differs from the body's: status_code 91.
        REFUND_HASH_MERCHANT_KEY_MISMATCH = "refund_hash_merchant_key_mismatch", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (91 HASH_KEY_MERCHANT_KEY_MISMATCH); assumed: the English wording";
        /// A missing field: status_code 1.
        REFUND_VALIDATION_ERROR = "refund_validation_error", "refund", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (1 BASIC_VALIDATION); assumed: the wording, Laravel's default";
        /// A status code outside SiPay's table (777): on a refund a client must answer
        /// OutcomeUnknown with the raw code, never a known decline.
        REFUND_UNKNOWN_STATUS_CODE = "refund_unknown_status_code", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); assumed: code 777 and its wording, chosen to be outside the 67 codes of sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php";
        /// "Unknown error": status_code 99. On a refund: OutcomeUnknown.
        REFUND_UNKNOWN_ERROR = "refund_unknown_error", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (99 UNKNOWN_ERROR, the description being the PHP SDK's text); assumed: that a refund can answer it";
        /// "Partially successful": status_code 112. On a refund: OutcomeUnknown.
        REFUND_PARTIALLY_SUCCESSFUL = "refund_partially_successful", "refund", 200, false,
            "seeds/sipay-refund-tr.md: \"Başarısız Yanıt\" (shape); sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (112 PARTIALLY_SUCCESSFUL, the description being the PHP SDK's text); assumed: that a refund can answer it";
        /// Check status of a payment with nothing refunded; amounts as JSON numbers.
        CHECK_STATUS_COMPLETED = "check_status_completed", "check_status", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php and muhammedaksam/sipay-node src/types/index.ts PaymentStatusResponse (top-level fields, total_refunded_amount and transaction_amount as numbers); assumed: transaction_status \"Completed\" for an unrefunded sale (the refund webhook's word), currency_code (no SDK maps one), refund_info [] (only node types it, any[])";
        /// Check status after two partial refunds, with `refund_info`.
        CHECK_STATUS_PARTIALLY_REFUNDED = "check_status_partially_refunded", "check_status", 200, false,
            "seeds/sipay-refund-en.md: Partial Refunds (transaction_status partially_refund); sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php (top-level fields), muhammedaksam/sipay-node src/types/index.ts (refund_info?: any[]); assumed: the refund_info entry shape (refund_transaction_id, amount, status \"success\", created_at)";
        /// Check status after a full refund.
        CHECK_STATUS_REFUNDED = "check_status_refunded", "check_status", 200, false,
            "seeds/sipay-refund-en.md: a full refund sets transaction_status to refund; sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php (top-level fields); assumed: the refund_info entry shape";
        /// Check status whose `refund_info` entries carry no refund_transaction_id and
        /// numeric amounts, one without a status.
        CHECK_STATUS_REFUND_INFO_UNTAGGED = "check_status_refund_info_untagged", "check_status", 200, false,
            "sdk: muhammedaksam/sipay-node src/types/index.ts (refund_info?: any[], no entry shape); assumed: entries without refund_transaction_id, amounts as numbers, one entry without a status (clients must not guess)";
        /// Check status for an unknown invoice: status_code 31.
        CHECK_STATUS_NOT_FOUND = "check_status_not_found", "check_status", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Enums/ResponseStatusCode.php (31 TRANSACTION_NOT_FOUND); assumed: the English wording and the echoed invoice_id";
        /// Check status with neither `total_refunded_amount` nor `refund_info`: a lookup
        /// that says nothing about refunds (undetermined, never "0 refunded").
        CHECK_STATUS_NO_REFUND_FIGURES = "check_status_no_refund_figures", "check_status", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php (top-level fields); assumed: that SiPay may leave both refund figures out (nothing documents when it does: sdk-models.md §0.3, §3)";
        /// Check status whose `refund_info` lists a failed refund (not counted in the total).
        CHECK_STATUS_REFUND_INFO_FAILED_ENTRY = "check_status_refund_info_failed_entry", "check_status", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php (top-level fields), muhammedaksam/sipay-node src/types/index.ts (refund_info?: any[]); assumed: the entry shape, the status word \"failed\", and that a failed refund is listed at all and left out of total_refunded_amount";
        /// Check status with a total and no `refund_info`, as the official PHP SDK reads it
        /// (it never sends `show_refund_info`).
        CHECK_STATUS_TOTAL_ONLY = "check_status_total_only", "check_status", 200, false,
            "sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php (the fields it maps, no refund_info) and src/Sipay/Requests/CheckTransactionStatusRequest.php (no show_refund_info); assumed: the values, total_refunded_amount as a number (node's type)";
        /// Check status whose `transaction_status` "refund" (fully refunded) contradicts a total
        /// below what was paid.
        CHECK_STATUS_REFUND_CONTRADICTED = "check_status_refund_contradicted", "check_status", 200, false,
            "seeds/sipay-refund-en.md: a full refund sets transaction_status to refund; sdk: sipay-tr/sipay-php-sdk src/Sipay/Resources/Mapper/TransactionStatusMapper.php; assumed: the contradiction itself (a lagging or inconsistent answer) and the refund_info entry shape";
    }
}

/// iyzico responses.
///
/// The sandbox answers authentication failures with HTTP 200 and `status: failure`
/// (providers/iyzico.md); the docs declare 400. Both are here.
///
/// Every [`Fixture::source`] names where the shape comes from: the seed document
/// (`seeds/…`), an official SDK model with its path (`sdk: iyzipay-java src/main/java/…`),
/// iyzico's docs (`docs: …`), and `assumed: …` for every part no source gives (values, and
/// what undocumented codes mean). SDK paths are those of shared/providers/sdk-models.md
/// (iyzipay-java 2.0.142, iyzipay-node 2.0.69).
pub mod iyzico {
    use super::Fixture;

    fixtures! { "iyzico";
        /// Item-level refund success from the documentation's "Örnek response".
        REFUND_SUCCESS = "refund_success", "refund", 200, true,
            "seeds/iyzico-refund-tr.md: İade, \"Örnek response\"";
        /// Item-level refund success as newer responses come: with `refundHostReference`,
        /// `retryable` and a response `signature`, made with secret key `secretKey` over
        /// `10844367:0.5:TRY:123456789`.
        REFUND_SUCCESS_SIGNED = "refund_success_signed", "refund", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/Refund.java (refundHostReference, signature; Refund.verifySignature over paymentId:price:currency:conversationId); docs: docs.iyzico.com refund-and-cancel example (retryable); assumed: the values, signed by us with secret `secretKey`";
        /// Item-level refund success with `price` as a JSON string.
        REFUND_SUCCESS_STRING_PRICE = "refund_success_string_price", "refund", 200, false,
            "assumed: price as a JSON string (providers/iyzico.md: both forms seen; sdk: iyzipay-dotnet Iyzipay/Model/Refund.cs types Price as a string), otherwise the example of seeds/iyzico-refund-tr.md";
        /// Payment-level refund (`/v2/payment/refund`) success: no paymentTransactionId;
        /// signed with secret key `secretKey` over `25180208:15:TRY:123456789`.
        REFUND_V2_SUCCESS = "refund_v2_success", "refund_v2", 200, false,
            "sdk: iyzipay-node test/unit/RefundV2Test.js mock (no paymentTransactionId) and iyzipay-java src/main/java/com/iyzipay/model/Refund.java (the v2 refund's model, signature verified); assumed: the signature, ours (the node mock's is no HMAC of its fields)";
        /// Cancel (void) success; cancel responses carry no signature.
        CANCEL_SUCCESS = "cancel_success", "cancel", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/Cancel.java (paymentId, price, currency, authCode, hostReference; no signature); assumed: the values";
        /// Wrong signature: errorCode "1000" "Geçersiz imza", HTTP 200.
        FAILURE_INVALID_SIGNATURE = "failure_invalid_signature", "any", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (status, errorCode, errorMessage, errorGroup, locale, systemTime, conversationId); providers/iyzico.md: 1000 invalid signature (\"Geçersiz imza\"), seen with HTTP 200 on the sandbox";
        /// Wrong signature with `errorCode` as a JSON number.
        FAILURE_INVALID_SIGNATURE_NUMERIC_CODE = "failure_invalid_signature_numeric_code", "any", 200, false,
            "sdk: iyzipay-php tests/Iyzipay/Tests/mock/*.json (errorCode as the number 10000); providers/iyzico.md: 1000 invalid signature";
        /// Wrong signature answered with HTTP 400, as the docs declare for errors.
        FAILURE_INVALID_SIGNATURE_HTTP_400 = "failure_invalid_signature", "any", 400, false,
            "docs: the docs declare HTTP 400 for refund/cancel errors (providers/iyzico.md); sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope), body as failure_invalid_signature";
        /// Unknown API key: errorCode "1001".
        FAILURE_API_KEY_NOT_FOUND = "failure_api_key_not_found", "any", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope); providers/iyzico.md: 1001 API key not found in this environment; assumed: the wording";
        /// Signature missing: errorCode "1007".
        FAILURE_SIGNATURE_MISSING = "failure_signature_missing", "any", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope); providers/iyzico.md: 1007 signature missing; assumed: the wording";
        /// Authorization header missing: errorCode "1009".
        FAILURE_AUTHORIZATION_MISSING = "failure_authorization_missing", "any", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope); providers/iyzico.md: 1009 Authorization header missing; assumed: the wording";
        /// Invalid request: errorCode "11".
        FAILURE_INVALID_REQUEST = "failure_invalid_request", "any", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope); providers/iyzico.md: 11 invalid request; assumed: the wording";
        /// The bank declined the refund: errorCode "10246", errorGroup REFUND_DECLINE, retryable.
        FAILURE_REFUND_DECLINED = "failure_refund_declined", "refund", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope with errorGroup); providers/iyzico.md: 10246 REFUND_DECLINE (bank declined, marked retryable); assumed: the wording and retryable true";
        /// Reporting lookup of a payment with two partial refunds on its first item
        /// (`refundPrice` as a number and as a string; `paymentId` a number as in the docs).
        PAYMENT_DETAILS_PARTIALLY_REFUNDED = "payment_details_partially_refunded", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/{ReportingPaymentDetail,PaymentDetail,PaymentTxDetail,RefundTxDetail}.java (field names; no @SerializedName); docs: docs.iyzico.com reporting example (paymentId a number, transactionStatus 2 on a partially refunded line); assumed: refundStatus 1 = done (no source gives its values), the values";
        /// Reporting lookup of a cancelled payment: a `cancels[]` entry.
        PAYMENT_DETAILS_CANCELLED = "payment_details_cancelled", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/RefundDetail.java (cancels[]: refundId, cancelConversationId, refundPrice, refundStatus, isAfterSettlement, createdDate, currencyCode, authCode, hostReference); assumed: refundStatus 1 = done, and NOT_REFUNDED as a cancelled payment's paymentRefundStatus (no source says)";
        /// Reporting lookup with a failed cancel and a failed item refund (`refundStatus` 0 with
        /// iyzico's error fields) next to a completed refund: only the completed one is money
        /// returned.
        PAYMENT_DETAILS_FAILED_ENTRIES = "payment_details_failed_entries", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/{RefundDetail,RefundTxDetail}.java (errorGroup, errorCode, errorMessage on each entry); assumed: refundStatus 0 = failed (as paymentStatus FAILURE(0); no source gives refundStatus values) and 10246 REFUND_DECLINE on the entries";
        /// Reporting lookup whose `paymentRefundStatus` (`"TOTALLY_REFUNDED "`, with the docs'
        /// trailing space) contradicts its entries (40 of 100 refunded).
        PAYMENT_DETAILS_CONTRADICTORY_STATUS = "payment_details_contradictory_status", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/{PaymentDetail,PaymentTxDetail,RefundTxDetail}.java; docs: docs.iyzico.com reporting, TOTALLY_REFUNDED(\"TOTALLY_REFUNDED \"); assumed: the contradiction itself, made up to test the cross-check";
        /// Reporting lookup with a `refundStatus` value no source documents (2).
        PAYMENT_DETAILS_UNKNOWN_REFUND_STATUS = "payment_details_unknown_refund_status", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/model/RefundTxDetail.java (refundStatus an Integer); assumed: the value 2, made up (no source gives refundStatus values)";
        /// Reporting lookup of an unknown payment (errorCode "9001", the simulator's, and its wording are ours).
        PAYMENT_DETAILS_NOT_FOUND = "payment_details_not_found", "payment_details", 200, false,
            "sdk: iyzipay-java src/main/java/com/iyzipay/IyzipayResource.java (envelope); assumed: no document lists the code for an unknown paymentId; 9001 is IyzicoSim::ERR_NOT_FOUND, the wording ours";
    }
}

/// Every fixture of every provider.
pub fn all() -> impl Iterator<Item = &'static Fixture> {
    sipay::ALL.iter().chain(iyzico::ALL.iter())
}

/// The fixture named `name` of `provider`, if any.
pub fn find(provider: &str, name: &str) -> Option<&'static Fixture> {
    all().find(|f| f.provider == provider && f.name == name)
}
