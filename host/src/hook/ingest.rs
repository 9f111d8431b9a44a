//! Recording what waits in the spool (see [`crate::spool`]) once the database works again.

use std::sync::Arc;

use crate::input::RawInput;
use crate::payload;
use crate::store::FaultRow;

use super::{Host, Stages};

impl Host {
    /// Records what waits in the spool (see [`crate::spool`]), each line under its invocation id,
    /// and says how many lines were recorded. Lines that still cannot be recorded go back.
    /// Spooled records were redacted before they were spooled; raw inputs (from a client that
    /// could not start a host) are classified and redacted here, with no plugin run.
    /// `thorough`: also take what an interrupted ingestion left (see [`crate::spool::claim`]).
    pub fn ingest_spool(&mut self, thorough: bool) -> usize {
        if self.store().is_err() {
            return 0;
        }
        let Some(claimed) = crate::spool::claim(&self.config.data_dir, thorough) else { return 0 };
        let mut recorded = 0;
        for line in &claimed.lines {
            let mut record = match &line.raw {
                Some(raw) => {
                    let input = RawInput { bytes: raw.as_bytes().to_vec(), total_bytes: raw.len() as u64, ..RawInput::default() };
                    let payload = payload::classify(&input);
                    let text: Option<Arc<str>> = Some(Arc::from(raw.as_str()));
                    let mut record = self.base_record(&payload, &input, text.as_ref(), line.received_at_ns, &mut Stages::default());
                    record.invocation_id = line.invocation_id.clone();
                    record
                }
                None => line.record(),
            };
            record.faults.push(FaultRow {
                source: "spool",
                plugin: None,
                path: None,
                message: format!("recorded late from the spool: {}", line.spooled_because),
            });
            let stored = self.store().and_then(|mut s| s.record(&record).map_err(|e| e.to_string()));
            match stored {
                Ok(_) => recorded += 1,
                Err(e) => {
                    tracing::warn!("cannot ingest a spooled event yet: {e}");
                    if let Err(e) = crate::spool::put_back(&self.config.data_dir, line) {
                        tracing::error!("a spooled event could not be put back: {e}");
                        // Left in the claimed file for the next ingestion.
                        return recorded;
                    }
                }
            }
        }
        claimed.done();
        recorded
    }
}
