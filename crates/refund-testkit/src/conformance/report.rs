//! Scenario outcomes and the suite's report.

use std::fmt;
use std::time::Duration;

use super::Scenario;

/// How one scenario ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// A check failed: what was expected and what happened.
    Failed(String),
    /// The scenario did not run, and why (declared by the harness, or implied by the
    /// provider's capabilities, e.g. repeated partial refunds on a provider that declares none).
    Skipped(String),
}

impl Outcome {
    /// Whether the scenario passed.
    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }

    /// Whether the scenario failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// Whether the scenario was skipped.
    pub fn is_skipped(&self) -> bool {
        matches!(self, Outcome::Skipped(_))
    }

    /// Panics with the failure when the scenario failed, for running one scenario in a test:
    /// `conformance::full_refund(&p, &h).await.assert_ok()`.
    #[track_caller]
    #[allow(clippy::panic, reason = "an assertion helper for tests")]
    pub fn assert_ok(&self) {
        if let Outcome::Failed(why) = self {
            panic!("conformance scenario failed: {why}");
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Failed(why) => write!(f, "FAILED: {why}"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// One scenario's outcome in a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// The result of [`run`](super::run): every scenario by name with its outcome.
///
/// Displays as a table:
///
/// ```text
/// conformance: acme — 13 passed, 0 failed, 1 skipped
///   passed   full_refund                              3 ms
///   skipped  repeated_partial_refunds                 0 ms  acme allows one partial refund per payment
///   FAILED   timeout_is_outcome_unknown            1004 ms  expected OutcomeUnknown, got …
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The provider's name.
    pub provider: String,
    /// The scenarios, in the order they ran.
    pub results: Vec<ScenarioResult>,
}

impl Report {
    /// A report for `provider`.
    pub fn new(provider: impl Into<String>, results: Vec<ScenarioResult>) -> Self {
        Report {
            provider: provider.into(),
            results,
        }
    }

    /// The outcome of `scenario`, when it ran.
    pub fn outcome(&self, scenario: Scenario) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|r| r.scenario == scenario)
            .map(|r| &r.outcome)
    }

    /// The scenarios that failed, with why.
    pub fn failures(&self) -> impl Iterator<Item = (Scenario, &str)> {
        self.results.iter().filter_map(|r| match &r.outcome {
            Outcome::Failed(why) => Some((r.scenario, why.as_str())),
            _ => None,
        })
    }

    /// How many scenarios passed, failed and were skipped.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Outcome) -> bool| self.results.iter().filter(|r| f(&r.outcome)).count();
        (
            count(Outcome::is_passed),
            count(Outcome::is_failed),
            count(Outcome::is_skipped),
        )
    }

    /// Whether no scenario failed and every skip has a reason.
    pub fn is_passed(&self) -> bool {
        self.results.iter().all(|r| match &r.outcome {
            Outcome::Passed => true,
            Outcome::Failed(_) => false,
            Outcome::Skipped(why) => !why.trim().is_empty(),
        })
    }

    /// Panics with the whole table when a scenario failed or a skip has no reason.
    #[track_caller]
    #[allow(clippy::panic, reason = "an assertion helper for tests")]
    pub fn assert_passed(&self) {
        if !self.is_passed() {
            panic!("the conformance suite failed\n{self}");
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (passed, failed, skipped) = self.counts();
        writeln!(
            f,
            "conformance: {} — {passed} passed, {failed} failed, {skipped} skipped",
            self.provider
        )?;
        let width = self
            .results
            .iter()
            .map(|r| r.scenario.name().len())
            .max()
            .unwrap_or(0);
        for r in &self.results {
            let (label, detail) = match &r.outcome {
                Outcome::Passed => ("passed", ""),
                Outcome::Failed(why) => ("FAILED", why.as_str()),
                Outcome::Skipped(why) if why.trim().is_empty() => ("skipped", "(NO REASON GIVEN)"),
                Outcome::Skipped(why) => ("skipped", why.as_str()),
            };
            let line = format!(
                "  {label:<8} {:<width$} {:>6} ms  {detail}",
                r.scenario.name(),
                r.elapsed.as_millis()
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(scenario: Scenario, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            scenario,
            outcome,
            elapsed: Duration::from_millis(3),
        }
    }

    #[test]
    fn the_table_names_every_scenario_with_its_outcome() {
        let report = Report::new(
            "acme",
            vec![
                result(Scenario::FullRefund, Outcome::Passed),
                result(Scenario::PartialRefund, Outcome::Failed("boom".into())),
                result(
                    Scenario::RepeatedPartialRefunds,
                    Outcome::Skipped("why".into()),
                ),
            ],
        );
        let table = report.to_string();
        assert!(table.contains("1 passed, 1 failed, 1 skipped"), "{table}");
        assert!(table.contains("passed   full_refund"), "{table}");
        assert!(table.contains("FAILED   partial_refund"), "{table}");
        assert!(table.contains("boom"), "{table}");
        assert!(
            table.contains("skipped  repeated_partial_refunds"),
            "{table}"
        );
        assert!(!report.is_passed());
        assert_eq!(report.failures().count(), 1);
    }

    #[test]
    fn a_skip_without_a_reason_fails_the_report() {
        let report = Report::new(
            "acme",
            vec![result(Scenario::FullRefund, Outcome::Skipped(" ".into()))],
        );
        assert!(!report.is_passed());
        assert!(report.to_string().contains("NO REASON"));
        let explained = Report::new(
            "acme",
            vec![result(Scenario::FullRefund, Outcome::Skipped("no".into()))],
        );
        assert!(explained.is_passed());
    }

    #[test]
    #[should_panic(expected = "partial_refund")]
    fn assert_passed_panics_with_the_table() {
        Report::new(
            "acme",
            vec![result(Scenario::PartialRefund, Outcome::Failed("x".into()))],
        )
        .assert_passed();
    }
}
