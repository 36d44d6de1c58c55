//! The validating pass: every row is read and checked before anything is sent.

use std::collections::HashMap;
use std::path::Path;

use std::sync::Arc;

use refund_core::{PaymentRef, RefundProvider, RefundRequest};

use super::input::Input;
use super::{BatchError, Provider, Row};
use crate::commands::Connection;
use crate::exit::Failure;
use crate::journal::{self, Hash128, HashTable, Index, RowState, RowView};
use crate::output::err_line;

/// What the validating pass found, for the working pass.
#[derive(Debug, Default)]
pub(super) struct Checks {
    /// Valid rows.
    pub(super) valid: u64,
    /// Malformed rows (already reported).
    pub(super) malformed: u64,
    /// Lines of rows that parse but that their provider refuses before sending
    /// ([`RefundProvider::validate`]): counted in `malformed`, skipped by the working pass.
    pub(super) refused_lines: std::collections::HashSet<u64>,
    /// Contents that more than one row has: only these need numbering.
    pub(super) repeated: HashTable<()>,
    /// Identical rows without a reference (unless the operator said they are meant): how
    /// many, and the first lines.
    pub(super) identical: HashTable<(u64, Vec<u64>)>,
    /// References more than one row uses, with their lines.
    pub(super) shared_references: HashTable<Vec<u64>>,
    /// Attempts with an unknown outcome whose row is no longer in the input.
    pub(super) orphans: Vec<Orphan>,
    /// Orphans by `provider|payment`.
    pub(super) orphans_by_payment: HashMap<String, usize>,
    /// References of new rows that rows of the journal use already: the key and state of
    /// such a row.
    pub(super) used_references: HashTable<(String, RowState)>,
}

/// An attempt with an unknown outcome whose row is no longer in the input: the row was
/// edited (or removed) after it.
#[derive(Debug, Clone)]
pub(super) struct Orphan {
    pub(super) key: String,
    pub(super) reference: String,
    pub(super) provider: Option<Provider>,
    /// As `PaymentRef` displays it.
    pub(super) payment: String,
    /// `10.00 TRY`.
    pub(super) amount: String,
    pub(super) view: RowView,
}

impl Orphan {
    pub(super) fn describe(&self) -> String {
        format!(
            "{} of {} with reference {}, sent at {}",
            self.amount,
            self.payment,
            self.reference,
            journal::utc(self.view.attempted_at())
        )
    }

    /// The payment to look up.
    pub(super) fn payment_ref(&self) -> Option<PaymentRef> {
        if let Some(id) = self.payment.strip_prefix("payment:") {
            return Some(PaymentRef::payment(id));
        }
        let item = self.payment.strip_prefix("item:")?;
        Some(match item.split_once('@') {
            Some((item, parent)) => PaymentRef::item(item).in_payment(parent),
            None => PaymentRef::item(item),
        })
    }
}

/// The validating pass: reports malformed rows, and finds the repeated contents, the shared
/// references and the orphaned attempts, before anything is sent.
///
/// `allow_identical`: the operator says identical rows without a reference are meant (each is
/// a refund of its own); otherwise they are found here and refused before anything is sent.
///
/// Every row is also put to its provider's [`RefundProvider::validate`] (no I/O): what the
/// provider would refuse at send time (a `|` in a SiPay invoice id, an iyzico request without
/// an ip) is refused here with its line, before anything is sent. A provider whose client
/// cannot be built (no credentials) is skipped here; the working pass says so.
pub(super) fn validate(
    input: &Path,
    index: &Index,
    allow_identical: bool,
    connection: &Connection,
) -> Result<Checks, BatchError> {
    let mut providers = Validators::new(connection);
    let hashing = index.hashing().clone();
    // Rows with an unknown outcome, by content: (occurrence, record offset). Few, normally.
    let mut unresolved: HashTable<Vec<(u32, u64)>> = HashTable::default();
    for view in index.unresolved() {
        let record = index.record_at(view.offset)?;
        if let Some(parts) = journal::parse_key(&record.key) {
            unresolved
                .entry(hashing.of(parts.content))
                .or_default()
                .push((parts.occurrence, view.offset));
        }
    }
    let mut seen_unresolved: HashTable<u32> = HashTable::default();
    let mut contents: Vec<Hash128> = Vec::new();
    // Rows without a reference, with their lines (only when identical ones are refused).
    let mut unreferenced: Vec<(Hash128, u64)> = Vec::new();
    let mut references: Vec<(Hash128, u64)> = Vec::new();
    // References of rows the journal has never seen (a row with its own reference is never
    // numbered past 1 unless it repeats, and then it shares its reference anyway).
    let mut new_references: HashTable<()> = HashTable::default();
    let mut checks = Checks::default();

    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        let row = match next {
            Ok(row) => row,
            Err((line, why)) => {
                checks.malformed += 1;
                err_line(&format!("line {line}: {why}; skipped, not sent"))
                    .map_err(Failure::other)?;
                continue;
            }
        };
        if let Err(why) = providers.check(&row) {
            checks.malformed += 1;
            checks.refused_lines.insert(row.line);
            err_line(&format!("line {}: {why}; skipped, not sent", row.line))
                .map_err(Failure::other)?;
            continue;
        }
        checks.valid += 1;
        let content = hashing.of(&row.content);
        contents.push(content);
        if row.reference.is_none() && !allow_identical {
            unreferenced.push((content, row.line));
        }
        if let Some(reference) = &row.reference {
            let hash = hashing.of(reference.as_str());
            references.push((hash, row.line));
            if index.get(&journal::row_key(&row.content, 1)).is_none() {
                new_references.insert(hash, ());
            }
        }
        if unresolved.contains_key(&content) {
            *seen_unresolved.entry(content).or_default() += 1;
        }
    }

    contents.sort_unstable();
    for pair in contents.windows(2) {
        if pair[0] == pair[1] {
            checks.repeated.insert(pair[0], ());
        }
    }
    drop(contents);
    unreferenced.sort_unstable();
    for group in unreferenced.chunk_by(|a, b| a.0 == b.0) {
        if group.len() > 1 {
            let lines = group.iter().take(6).map(|(_, line)| *line).collect();
            checks
                .identical
                .insert(group[0].0, (group.len() as u64, lines));
        }
    }
    drop(unreferenced);
    references.sort_unstable();
    for group in references.chunk_by(|a, b| a.0 == b.0) {
        if group.len() > 1 {
            checks
                .shared_references
                .insert(group[0].0, group.iter().map(|(_, line)| *line).collect());
        }
    }
    drop(references);
    for (hash, record) in index.rows_using(&new_references)? {
        checks
            .used_references
            .insert(hash, (record.key, record.state));
    }
    drop(new_references);

    for (content, attempts) in &unresolved {
        let present = seen_unresolved.get(content).copied().unwrap_or(0);
        for &(occurrence, offset) in attempts {
            if occurrence <= present {
                continue;
            }
            let record = index.record_at(offset)?;
            let Some(parts) = journal::parse_key(&record.key) else {
                continue;
            };
            let Some(view) = index.get(&record.key) else {
                continue;
            };
            let orphan = Orphan {
                provider: Provider::from_name(parts.provider),
                payment: parts.payment.to_owned(),
                amount: format!("{} {}", parts.amount, parts.currency),
                reference: record.reference.clone(),
                key: record.key.clone(),
                view,
            };
            let n = checks.orphans.len();
            checks
                .orphans_by_payment
                .entry(format!("{}|{}", parts.provider, parts.payment))
                .or_insert(n);
            checks.orphans.push(orphan);
        }
    }
    Ok(checks)
}

/// Each provider's client, built when a row first needs it, for
/// [`RefundProvider::validate`].
struct Validators<'a> {
    connection: &'a Connection,
    built: std::collections::HashMap<Provider, Option<Arc<dyn RefundProvider>>>,
}

impl<'a> Validators<'a> {
    fn new(connection: &'a Connection) -> Self {
        Validators {
            connection,
            built: std::collections::HashMap::new(),
        }
    }

    /// What the row's provider would refuse before sending, as one line.
    fn check(&mut self, row: &Row) -> Result<(), String> {
        let connection = self.connection;
        let client = self
            .built
            .entry(row.provider)
            .or_insert_with(|| match row.provider {
                Provider::Sipay => crate::commands::sipay::client(connection)
                    .ok()
                    .map(|c| Arc::new(c) as Arc<dyn RefundProvider>),
                Provider::Iyzico => crate::commands::iyzico::client(connection)
                    .ok()
                    .map(|c| Arc::new(c) as Arc<dyn RefundProvider>),
            });
        let Some(client) = client else {
            return Ok(());
        };
        // The reference does not change what a provider refuses before sending; a row without
        // one gets a stand-in of the derived kind.
        let reference = row
            .reference
            .as_ref()
            .map_or("validate-row", |r| r.as_str());
        let request = RefundRequest::builder(row.payment.clone(), row.amount)
            .reference(reference)
            .build()
            .map_err(|e| e.to_string())?;
        client.validate(&request).map_err(|e| e.to_string())
    }
}
