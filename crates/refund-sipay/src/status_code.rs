//! SiPay's application `status_code`s: the whole table of SiPay's official PHP SDK, and what
//! each one means for a refund.
//!
//! Source: `src/Sipay/Enums/ResponseStatusCode.php` in `sipay-tr/sipay-php-sdk` (the official
//! SDK, snapshot `f83a913f`), 67 codes; the unofficial node SDK (`muhammedaksam/sipay-node`,
//! `src/types/status-codes.ts`) has the same 67 numbers and no others. The names below are the
//! PHP SDK's constants and the descriptions its Turkish text, verbatim
//! (`../shared/providers/sdk-models.md` §1.2 has the table with both SDKs' names).
//!
//! **No source says which endpoint can return which code.** Most codes are about payments,
//! cards, recurring plans or card tokens, and would be odd on a refund. The [`RefundClass`] of
//! each code is therefore *our* reading of its name and text, chosen so that a wrong guess can
//! only cost a lookup, never money:
//!
//! - a code whose text is a plain refusal (validation, not found, not allowed, limit, not set)
//!   is [`RefundClass::Declined`]: the request was refused, nothing moved;
//! - a code whose text admits that something *may* have been processed ("unknown error",
//!   "partially successful", "already processed", "invalid response or unknown error") is
//!   [`RefundClass::OutcomeUnknown`]: look the refund up before doing anything else;
//! - credential and hash codes are [`RefundClass::Authentication`];
//! - a code that is **not in this table** (or not a number) on a refund is outcome-unknown too:
//!   nobody can say what it means (`crate::client::classify_code`).
//!
//! ```
//! use refund_sipay::status_code::{self, RefundClass};
//!
//! let c = status_code::lookup(104).unwrap();
//! assert_eq!(c.name, "REFUND_TRANSACTION_ID_NOT_UNIQUE");
//! assert_eq!(c.on_refund, RefundClass::DuplicateReference);
//! assert_eq!(status_code::TABLE.len(), 67);
//! assert!(status_code::lookup(777).is_none());
//! ```

/// What a `status_code` means when it answers a refund, the call that moves money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefundClass {
    /// 100: refunded.
    Success,
    /// 101: the refund request was created and SiPay's team will complete it
    /// (`RefundStatus::Pending`).
    Pending,
    /// 104: the `refund_transaction_id` was used before. An earlier attempt reached SiPay;
    /// whether it was refunded is unknown (`RefundError::DuplicateReference`): look it up,
    /// never count it as declined.
    DuplicateReference,
    /// The credentials or the hash_key were refused; nothing was processed
    /// (`RefundError::AuthenticationRejected`).
    Authentication,
    /// A refusal: nothing was refunded (`RefundError::Declined`).
    Declined,
    /// A refusal that may succeed if sent again later (`RefundError::Declined`, retryable).
    DeclinedRetryable,
    /// SiPay itself cannot say, or its text admits something may have been processed
    /// (`RefundError::OutcomeUnknown`).
    OutcomeUnknown,
}

/// One code of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusCode {
    /// The number SiPay sends.
    pub code: u16,
    /// The PHP SDK's constant name.
    pub name: &'static str,
    /// The PHP SDK's description, verbatim (Turkish).
    pub description: &'static str,
    /// What it means on a refund.
    pub on_refund: RefundClass,
}

macro_rules! table {
    ($( $(#[$doc:meta])* $code:literal $name:ident $class:ident $description:literal; )*) => {
        $(
            #[doc = concat!("`", stringify!($code), "`: ", $description)]
            $(#[$doc])*
            pub const $name: u16 = $code;
        )*

        /// Every code of the official PHP SDK's `ResponseStatusCode`, in ascending order.
        pub const TABLE: [StatusCode; 67] = [
            $(StatusCode {
                code: $code,
                name: stringify!($name),
                description: $description,
                on_refund: RefundClass::$class,
            }),*
        ];
    };
}

table! {
    /// A validation error (a field missing or malformed): nothing was processed.
    1 BASIC_VALIDATION Declined "Temel doğrulama";
    /// "Invoice id already processed": on a refund, nothing says whether this means an earlier
    /// refund of the invoice went through (node maps it to HTTP 409 Conflict and marks it
    /// retryable). Not a plain refusal, so outcome-unknown.
    3 INVOICE_ID_ALREADY_PROCESSED OutcomeUnknown "Fatura kimliği çoktan işlendi";
    12 INVALID_ITEMS Declined "Öğeler bir dizi olmalı, Geçersiz Para Birimi kodu, Geçersiz öğe biçimi";
    13 TOTAL_MISMATCH Declined "Ürün fiyatınızın toplamı (\"5\"), fatura toplamına (\"10\") eşit değil";
    /// The merchant key names no merchant: a credential problem.
    14 MERCHANT_NOT_FOUND Authentication "Üye işyeri bulunamadı!";
    30 INVALID_CREDENTIALS Authentication "Geçersiz kimlik bilgileri";
    /// No such sale: nothing to refund.
    31 TRANSACTION_NOT_FOUND Declined "İşlem bulunamadı";
    32 INVALID_INVOICE_ID Declined "Geçersiz fatura kimliği, sipariş tamamlanmadı";
    /// The PHP constant says AMOUNT, its text "Miktar" (quantity); node calls it
    /// `QUANTITY_MUST_BE_INTEGER`.
    33 AMOUNT_MUST_BE_INTEGER Declined "Miktar tam sayı olmalıdır";
    34 PAYMENT_INTEGRATION_NOT_ALLOWED Declined "Ödeme entegrasyon yöntemine izin verilmiyor. Lütfen desteğe başvurunuz.";
    35 CREDIT_CARD_PAYMENT_OPTION_NOT_DEFINED Declined "Kredi Kartı Ödeme Seçeneği tanımlanmadı";
    36 POS_NOT_FOUND Declined "Pos bulunamadı";
    37 MERCHANT_POS_COMMISSION_NOT_SET Declined "Üye işyeri Pos Komisyonu ayarlanmadı. Lütfen servis sağlayıcı ile iletişime geçiniz.";
    38 MERCHANT_COMMISSION_NOT_SET Declined "Bu para birimi ve ödeme yöntemi için Üye İşyeri Komisyonu belirlenmedi. Lütfen başka bir ödeme yöntemi deneyiniz";
    39 COMMISSION_NOT_FOUND Declined "Komisyon bulunamadı";
    40 INSTALLMENT_NOT_FOUND Declined "Taksit bulunamadı";
    /// "Order failed" (on check status: the payment failed; a sibling gateway polls until 100
    /// or 41).
    41 ORDER_FAILED Declined "Sipariş başarısız";
    42 PRODUCT_PRICE_TOO_LOW Declined "Ürün fiyatı komisyondan az, Ürün fiyatı maliyetten düşük";
    43 PAYMENT_DUE_NOT_SET Declined "Ödeme vadesi ayarlanmamış";
    44 CREDIT_CARD_BLOCKED Declined "Bu kredi kartı bloke edilmiştir.";
    45 MERCHANT_DAILY_TRANSACTION_LIMIT_EXCEEDED Declined "Üye İşyeri günlük işlem tutarı sınırı aşıldı";
    46 MERCHANT_MONTHLY_TRANSACTION_COUNT_EXCEEDED Declined "Üye İşyeri aylık işlem sayısı sınırı aşıldı";
    47 MERCHANT_MONTHLY_TRANSACTION_AMOUNT_EXCEEDED Declined "Üye İşyeri aylık işlem tutarı sınırı aşıldı";
    48 MINIMUM_TRANSACTION_LIMIT_VIOLATED Declined "İşlem başına minimum işlem limiti ihlal edildi";
    /// The refund refusal. node's English text lists its causes: over-refund, no sale,
    /// insufficient balance, non-refundable status, "wait at least 30 seconds for another
    /// refund", per-transaction limit. Retryable only when the description is *only* about
    /// the wait (`crate::client::asks_to_wait`); node's `isRetryableStatus(49)` is true for
    /// every 49, which we do not follow: an over-refund never succeeds later.
    49 REFUND_FAILED Declined "İade Başarısız";
    55 RECURRING_PAYMENT_ERROR Declined "Yinelenen ödemede taksitli satış olamaz";
    56 INVALID_SALE_WEBHOOK_KEY Declined "Geçersiz satış webhook anahtarı! Lütfen Sipay'deki anahtar adını kontrol ediniz";
    60 MERCHANT_CARD_USAGE_NOT_ALLOWED Declined "Üye iş yerinin bu kartı kullanarak işlem yapmasına izin verilmez.";
    /// The hash_key does not match the amount (node's text adds currency, installments, pos
    /// id, merchant key).
    68 HASH_KEY_MISMATCH Authentication "Hash key ile toplam tutar uyuşmazlığı";
    /// "Order not yet processed": the sale is not settled yet; node marks it retryable.
    69 ORDER_NOT_PROCESSED DeclinedRetryable "Sipariş henüz işlenmedi";
    70 CARD_PROGRAM_MISMATCH Declined "Kart programı uyuşmazlığı";
    /// Its text admits "invalid response or unknown error".
    71 RECURRING_PLAN_UPDATE_FAILED OutcomeUnknown "Yinelenen plan güncellemesi başarısız oldu, Geçersiz Yanıt veya Bilinmeyen Hata";
    72 DELETE_FAILED Declined "Silinemedi, Eski ödeme işlenemedi";
    /// Its text admits "invalid response or unknown error".
    73 RECURRING_PLAN_CARD_ADD_FAILED OutcomeUnknown "Yinelenen plan kartı eklenemedi, Geçersiz Yanıt veya Bilinmeyen Hata";
    76 FOREIGN_CARDS_NOT_ALLOWED Declined "Bu Üye İşyeri için Yabancı Kartlara İzin Verilmemektedir.";
    77 FOREIGN_CARD_COMMISSION_NOT_SET Declined "Bu Üye İşyeri için Yabancı Kart Komisyonu belirlenmemiş";
    79 CARD_TOKEN_PAYMENT_NOT_ALLOWED Declined "Üye işyerinin kart tokenı ile ödeme yapmasına izin verilmez";
    80 SUB_MERCHANT_NOT_FOUND Declined "Alt Üye işyeri bulunamadı";
    81 CURRENCY_CONVERSION_FAILED Declined "API'den para birimi dönüştürme başarısız oldu";
    85 INVALID_CHARACTER Declined "Geçersiz karakter";
    86 CARD_TOKEN_SAVE_FAILED Declined "Kart token kaydetme başarısız oldu";
    87 INVALID_TOKEN_OR_CUSTOMER_NUMBER Declined "Geçersiz token veya müşteri numarası";
    88 CARD_TOKEN_DELETE_FAILED Declined "Kart tokenı silinemedi";
    89 CARD_TOKEN_UPDATE_FAILED Declined "Kart tokenı güncellenemedi";
    90 INVALID_HASH_KEY Authentication "Geçersiz Hash key";
    91 HASH_KEY_MERCHANT_KEY_MISMATCH Authentication "Üye İşyeri anahtarı ile uyuşmayan Hash key";
    92 HASH_KEY_CUSTOMER_NUMBER_MISMATCH Authentication "Müşteri numarası ile uyuşmayan Hash key";
    93 HASH_KEY_CARDHOLDER_NAME_MISMATCH Authentication "Kart Sahibinin Adı ile uyuşmayan Hash key";
    94 HASH_KEY_CARD_NUMBER_MISMATCH Authentication "Kart Numarası ile uyuşmayan Hash key";
    95 HASH_KEY_EXPIRY_MONTH_MISMATCH Authentication "Son kullanma ayı ile uyuşmayan Hash key";
    96 HASH_KEY_EXPIRY_YEAR_MISMATCH Authentication "Son kullanma yılı ile uyuşmayan Hash key";
    97 HASH_KEY_CARD_TOKEN_MISMATCH Authentication "Kart tokenı ile uyuşmayan Hash key";
    /// "Unknown error": SiPay itself cannot say.
    99 UNKNOWN_ERROR OutcomeUnknown "Bilinmeyen hata";
    100 SUCCESS Success "Başarılı";
    /// Accepted, completed later by SiPay's team (node: "Your refund request has been
    /// successfully created. Our team will complete the return process"). The official PHP
    /// SDK throws on it like on every non-100 code; keune/omnipay-sipay and node count it as
    /// success. We answer a pending receipt.
    101 REFUND_REQUEST_CREATED Pending "İade talebiniz başarıyla oluşturuldu. Ekibimiz iade işlemini tamamlayacaktır";
    102 POS_NOT_DEFINED Declined "Pos tanımlanmadı, bu taksit için Pos bulunamadı";
    103 PAYBY_TOKEN_COMMISSION_NOT_SET Declined "Payby token komisyon oranı oluşturulmadı";
    /// The `refund_transaction_id` was used before. No source says whether the refusal
    /// carries the first refund's result; it only proves an earlier attempt reached SiPay.
    104 REFUND_TRANSACTION_ID_NOT_UNIQUE DuplicateReference "İade işlem ID si benzersiz olmalı";
    105 TRANSACTION_NOT_APPROVED Declined "İşlem onaylanmadı";
    106 INVALID_MERCHANT_TYPE Declined "Geçersiz üye işyeri tipi";
    107 API_OPT_VALIDATION_FAILED Declined "Gönderilen api opt doğrulanamadı";
    108 INVALID_CARD_NUMBER Declined "Geçersiz kart numarası";
    109 FILE_PROCESSING_ERROR Declined "Dosya işleme hatası";
    110 PARTIAL_REFUND_NOT_ALLOWED Declined "Parçalı iade bu işlem için izin verilmemektedir";
    /// "Partially successful", with no context in any source: some of it may have happened.
    /// node counts it as success; we do not.
    112 PARTIALLY_SUCCESSFUL OutcomeUnknown "Kısmen başarılı";
    /// The second "invoice id already processed" (see 3).
    117 INVOICE_ID_ALREADY_PROCESSED_117 OutcomeUnknown "Fatura kimliği zaten işlendi";
    404 CANCEL_URL_REQUIRED Declined "İptal URL'si boş bırakılmamalıdır";
}

/// The code's entry, if the official SDK's table has it.
pub fn lookup(code: i64) -> Option<&'static StatusCode> {
    let code = u16::try_from(code).ok()?;
    TABLE
        .binary_search_by_key(&code, |c| c.code)
        .ok()
        .and_then(|i| TABLE.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_sdks_67_codes_in_order_without_repeats() {
        assert_eq!(TABLE.len(), 67);
        assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
        for c in &TABLE {
            assert_eq!(lookup(i64::from(c.code)), Some(c));
            assert!(!c.description.is_empty() && !c.name.is_empty());
        }
        for missing in [0, 2, 50, 98, 111, 200, 777, -1, 100_000] {
            assert_eq!(lookup(missing), None, "{missing}");
        }
    }

    #[test]
    fn only_100_succeeds_and_only_101_is_pending() {
        let of = |class| {
            TABLE
                .iter()
                .filter(|c| c.on_refund == class)
                .map(|c| c.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(of(RefundClass::Success), [SUCCESS]);
        assert_eq!(of(RefundClass::Pending), [REFUND_REQUEST_CREATED]);
        assert_eq!(of(RefundClass::DuplicateReference), [104]);
        assert_eq!(of(RefundClass::OutcomeUnknown), [3, 71, 73, 99, 112, 117]);
        assert_eq!(
            of(RefundClass::Authentication),
            [14, 30, 68, 90, 91, 92, 93, 94, 95, 96, 97]
        );
        assert_eq!(of(RefundClass::DeclinedRetryable), [69]);
    }
}
