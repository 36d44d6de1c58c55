//! SiPay's 30-second rule: SiPay refuses a refund of an invoice that was refunded less than
//! 30 seconds before, with the same code 49 "Refund Failed" as a final refusal.
//!
//! The only source is the node SDK's English text for 49, which lists every cause of a 49 at
//! once, "Please wait at least 30 seconds for another refund" among them
//! (`../shared/providers/sdk-models.md` §1.2, §1.6); SiPay's own answer is just "Refund Failed"
//! (`seeds/sipay-refund-tr.md`), so the answer alone never tells the wait from a final refusal.
//! What the client *can* know is whether it refunded that invoice itself moments ago: this
//! module remembers, per `invoice_id`, when this client (and its clones) last got a 100 or 101
//! refund answer, or an answer that leaves the outcome unknown (SiPay may have applied it). That the rule is per invoice and 30 seconds is **assumed** from that text.
//!
//! The memory is bounded ([`RecentRefunds::CAPACITY`] invoices): entries older than the
//! spacing are useless and dropped first; when every entry is still fresh, the oldest goes.
//! Forgetting an invoice only makes a wait-49 read as the final decline it was read as before.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The spacing SiPay asks between two refunds of one invoice (node SDK's text for 49).
pub(crate) const SIPAY_REFUND_SPACING: Duration = Duration::from_secs(30);

/// Added to the remaining wait: our clock starts when the answer arrived, SiPay's when it
/// processed the refund (earlier), so the remaining time is already on the safe side; the
/// margin covers clock granularity and the next request's travel.
pub(crate) const MARGIN: Duration = Duration::from_secs(1);

/// When this client last had a refund of each invoice accepted.
#[derive(Debug)]
pub(crate) struct RecentRefunds {
    spacing: Duration,
    seen: Mutex<HashMap<String, Instant>>,
    /// Refunds of each invoice this client has on their way now: a 49 that arrives while
    /// another refund of the same invoice is in flight may be that one's 30 seconds (its
    /// answer, accepted, may simply be read later).
    in_flight: Mutex<HashMap<String, u32>>,
}

/// One refund of an invoice on its way ([`RecentRefunds::sending`]); counted until dropped.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    recent: &'a RecentRefunds,
    invoice_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut flying = self
            .recent
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = flying.get_mut(&self.invoice_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                flying.remove(&self.invoice_id);
            }
        }
    }
}

impl RecentRefunds {
    /// How many invoices are remembered at most.
    pub(crate) const CAPACITY: usize = 4096;

    pub(crate) fn new(spacing: Duration) -> Self {
        RecentRefunds {
            spacing,
            seen: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a refund of `invoice_id` as on its way until the guard is dropped. The count is
    /// bounded by the requests in flight, so it needs no eviction.
    pub(crate) fn sending(&self, invoice_id: &str) -> InFlight<'_> {
        if !self.spacing.is_zero() {
            *self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(invoice_id.to_owned())
                .or_default() += 1;
        }
        InFlight {
            recent: self,
            invoice_id: invoice_id.to_owned(),
        }
    }

    /// Records a refund of `invoice_id` at `now` that SiPay accepted (100 or 101) or may have
    /// applied (an outcome-unknown answer).
    pub(crate) fn accepted(&self, invoice_id: &str, now: Instant) {
        if self.spacing.is_zero() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains_key(invoice_id) && seen.len() >= Self::CAPACITY {
            let spacing = self.spacing;
            seen.retain(|_, at| now.saturating_duration_since(*at) < spacing);
            if seen.len() >= Self::CAPACITY
                && let Some(oldest) = seen
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(invoice_id.to_owned(), now);
    }

    /// How long until the spacing after this client's last accepted refund of `invoice_id`
    /// has passed, when it has not yet (`None`: no refund of it within the spacing). Called by
    /// a send that holds its own [`InFlight`]: another refund of the invoice in flight counts
    /// as one accepted just now.
    pub(crate) fn remaining(&self, invoice_id: &str, now: Instant) -> Option<Duration> {
        let others = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(invoice_id)
            .is_some_and(|n| *n > 1);
        if others {
            return Some(self.spacing);
        }
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let at = seen.get(invoice_id)?;
        let elapsed = now.saturating_duration_since(*at);
        (elapsed < self.spacing).then(|| self.spacing - elapsed)
    }

    /// How many invoices are remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_refunded_within_the_spacing_has_the_rest_of_it_to_wait() {
        let recent = RecentRefunds::new(SIPAY_REFUND_SPACING);
        let t0 = Instant::now();
        assert_eq!(recent.remaining("INV-1", t0), None);
        recent.accepted("INV-1", t0);
        assert_eq!(
            recent.remaining("INV-1", t0 + Duration::from_secs(12)),
            Some(Duration::from_secs(18))
        );
        assert_eq!(recent.remaining("INV-2", t0), None);
        assert_eq!(recent.remaining("INV-1", t0 + SIPAY_REFUND_SPACING), None);
        // A later refund restarts the wait.
        recent.accepted("INV-1", t0 + Duration::from_secs(40));
        assert_eq!(
            recent.remaining("INV-1", t0 + Duration::from_secs(41)),
            Some(Duration::from_secs(29))
        );
    }

    #[test]
    fn the_memory_stays_bounded_dropping_stale_then_oldest_invoices() {
        let recent = RecentRefunds::new(SIPAY_REFUND_SPACING);
        let t0 = Instant::now();
        for i in 0..RecentRefunds::CAPACITY {
            recent.accepted(&format!("old-{i}"), t0);
        }
        // All stale by now: one insert clears them.
        let later = t0 + Duration::from_secs(31);
        recent.accepted("new-0", later);
        assert_eq!(recent.len(), 1);
        for i in 1..=RecentRefunds::CAPACITY {
            recent.accepted(&format!("new-{i}"), later + Duration::from_millis(i as u64));
        }
        assert_eq!(recent.len(), RecentRefunds::CAPACITY);
        // All fresh: the oldest went, the newest stays.
        assert_eq!(recent.remaining("new-0", later), None);
        assert!(recent.remaining("new-4096", later).is_some());
    }

    #[test]
    fn another_refund_of_the_invoice_in_flight_counts_as_one_just_accepted() {
        let recent = RecentRefunds::new(SIPAY_REFUND_SPACING);
        let t0 = Instant::now();
        let first = recent.sending("INV-1");
        {
            let _second = recent.sending("INV-1");
            assert_eq!(recent.remaining("INV-1", t0), Some(SIPAY_REFUND_SPACING));
            let _other_invoice = recent.sending("INV-2");
            assert_eq!(recent.remaining("INV-2", t0), None);
        }
        // Alone again: only its own send is in flight.
        assert_eq!(recent.remaining("INV-1", t0), None);
        drop(first);
        assert!(recent.in_flight.lock().unwrap().is_empty());
    }

    #[test]
    fn a_zero_spacing_remembers_nothing() {
        let recent = RecentRefunds::new(Duration::ZERO);
        let t0 = Instant::now();
        recent.accepted("INV-1", t0);
        assert_eq!(recent.remaining("INV-1", t0), None);
        assert_eq!(recent.len(), 0);
    }
}
