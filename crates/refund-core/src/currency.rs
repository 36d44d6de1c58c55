//! ISO 4217 currencies and their minor-unit scale.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::MoneyError;

/// A currency a refund can be made in, with its ISO 4217 code and minor-unit scale.
///
/// The set covers what the supported Turkish providers settle in. Each provider declares in its
/// [`Capabilities`](crate::Capabilities) which of these it accepts.
///
/// ```
/// use refund_core::Currency;
///
/// let lira: Currency = "TRY".parse()?;
/// assert_eq!(lira, Currency::Try);
/// assert_eq!(lira.code(), "TRY");
/// assert_eq!(lira.scale(), 2);
/// # Ok::<(), refund_core::MoneyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Currency {
    /// Turkish lira.
    Try,
    /// US dollar.
    Usd,
    /// Euro.
    Eur,
    /// Pound sterling.
    Gbp,
    /// Swiss franc.
    Chf,
    /// Norwegian krone.
    Nok,
    /// Russian rouble.
    Rub,
    /// Japanese yen: a currency without minor units.
    Jpy,
}

impl Currency {
    /// Every currency this crate knows, in declaration order.
    pub const ALL: &'static [Currency] = &[
        Currency::Try,
        Currency::Usd,
        Currency::Eur,
        Currency::Gbp,
        Currency::Chf,
        Currency::Nok,
        Currency::Rub,
        Currency::Jpy,
    ];

    /// The three-letter ISO 4217 code, upper case.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Try => "TRY",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Chf => "CHF",
            Currency::Nok => "NOK",
            Currency::Rub => "RUB",
            Currency::Jpy => "JPY",
        }
    }

    /// How many decimal places an amount in this currency may have (its ISO 4217 minor unit).
    pub const fn scale(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Parses an ISO 4217 code. Upper case is canonical; lower case is accepted because
    /// configuration files and CSV exports often carry it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .iter()
            .copied()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| MoneyError::UnknownCurrency(truncate(s)))
    }
}

/// Keeps error messages bounded when the input came from outside.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for c in Currency::ALL {
            assert_eq!(c.code().parse::<Currency>().ok(), Some(*c));
            assert_eq!(c.to_string(), c.code());
        }
    }

    #[test]
    fn lower_case_codes_are_accepted() {
        assert_eq!("try".parse::<Currency>().ok(), Some(Currency::Try));
    }

    #[test]
    fn unknown_codes_are_rejected_with_the_code() {
        let err = "XXX".parse::<Currency>().unwrap_err();
        assert!(err.to_string().contains("XXX"), "{err}");
        assert!("".parse::<Currency>().is_err());
        assert!("TRYY".parse::<Currency>().is_err());
    }

    #[test]
    fn scales_follow_iso_4217() {
        assert_eq!(Currency::Try.scale(), 2);
        assert_eq!(Currency::Usd.scale(), 2);
        assert_eq!(Currency::Jpy.scale(), 0);
    }

    #[test]
    fn serde_uses_the_iso_code() {
        assert_eq!(serde_json::to_string(&Currency::Eur).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"GBP\"").unwrap(),
            Currency::Gbp
        );
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }
}
