//! tables/buckets.py's `Bucket` as the counting writes it: the same rows, counters, sketches
//! and stored bytes, kept in native memory. Python's class stays the one reports read.

use std::collections::BTreeMap;


use crate::codec::{put_blob, put_sint, put_uint, CodecError, Reader};
use crate::Map;
use crate::visitors::Visitors;

pub const N_COUNTERS: usize = 6;
// Positions in a row's counters: footfall.metrics.COUNTERS, checked by `configure`.
pub const EVENTS: usize = 0;
pub const PAGEVIEWS: usize = 1;
pub const TRANSACTIONS: usize = 2;
pub const SESSIONS: usize = 3;
pub const BOUNCES: usize = 4;
pub const DURATION_SUM: usize = 5;
const VERSION: u128 = 1;

pub struct Stats {
    pub counts: [i64; N_COUNTERS],
    pub visitors: Visitors,
    /// The row as last encoded, while it is unchanged.
    encoded: Option<Vec<u8>>,
}

impl Stats {
    fn empty() -> Self {
        Stats { counts: [0; N_COUNTERS], visitors: Visitors::Empty, encoded: None }
    }

    fn write(&self, out: &mut Vec<u8>, lg_k: u8) {
        for &n in &self.counts {
            put_sint(out, n as i128);
        }
        let items = self.visitors.items(lg_k);
        put_uint(out, items.len() as u128);
        for (rate, raw) in items {
            put_uint(out, rate as u128);
            put_blob(out, &raw);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Stats, CodecError> {
        let mut counts = [0i64; N_COUNTERS];
        for slot in counts.iter_mut() {
            *slot = i64::try_from(r.sint()?).map_err(|_| CodecError("counter out of range"))?;
        }
        let n = r.uint()?;
        let mut items = Vec::new();
        for _ in 0..n {
            let rate = u64::try_from(r.uint()?).map_err(|_| CodecError("rate out of range"))?;
            items.push((rate, r.blob()?));
        }
        Ok(Stats { counts, visitors: Visitors::from_items(items)?, encoded: None })
    }

    fn add(&mut self, counter: usize, n: i64) {
        self.counts[counter] += n;
    }
}

/// A breakdown row: as stored until first used (most rows of a bucket are not touched by
/// a batch), then decoded.
enum Row {
    Stored(Vec<u8>),
    Decoded(Stats),
}

#[derive(Default)]
struct Dimension {
    rows: Map<String, Row>,
    /// The rows as last encoded (count, then value and row of each), while none changed.
    block: Option<Vec<u8>>,
}

impl Dimension {
    fn row(&mut self, value: &str) -> Result<&mut Stats, CodecError> {
        self.block = None;
        if !self.rows.contains_key(value) {
            self.rows.insert(value.to_owned(), Row::Decoded(Stats::empty()));
        }
        let row = self.rows.get_mut(value).expect("inserted above");
        if let Row::Stored(raw) = row {
            let stats = Stats::read(&mut Reader::new(raw))?;
            *row = Row::Decoded(stats);
        }
        match row {
            Row::Decoded(stats) => {
                stats.encoded = None; // the caller is about to change it
                Ok(stats)
            }
            Row::Stored(_) => unreachable!("decoded above"),
        }
    }

    fn encode_block(&mut self, lg_k: u8) -> &[u8] {
        if self.block.is_none() {
            let mut out = Vec::new();
            put_uint(&mut out, self.rows.len() as u128);
            for (value, row) in self.rows.iter_mut() {
                put_blob(&mut out, value.as_bytes());
                match row {
                    Row::Stored(raw) => put_blob(&mut out, raw),
                    Row::Decoded(stats) => {
                        if stats.encoded.is_none() {
                            let mut encoded = Vec::new();
                            stats.write(&mut encoded, lg_k);
                            stats.encoded = Some(encoded);
                        }
                        put_blob(&mut out, stats.encoded.as_deref().expect("set above"));
                    }
                }
            }
            self.block = Some(out);
        }
        self.block.as_deref().expect("set above")
    }
}

/// What a session adds to each session-scoped row of its start bucket (tables/counting.py's
/// _Contribution): sessions, bounces, duration_sum, and the row values in
/// `session_rows` order.
pub struct Contribution<'a> {
    pub sessions: i64,
    pub bounces: i64,
    pub duration: i64,
    pub values: Vec<&'a str>,
}

pub struct Bucket {
    pub lg_k: u8,
    pub offset: i64,
    pub total: Stats,
    pub revenue: BTreeMap<String, i128>,
    dims: BTreeMap<String, Dimension>,
}

impl Bucket {
    pub fn new(lg_k: u8) -> Self {
        Bucket { lg_k, offset: -1, total: Stats::empty(), revenue: BTreeMap::new(), dims: BTreeMap::new() }
    }

    fn row(&mut self, dimension: &str, value: &str) -> Result<&mut Stats, CodecError> {
        if !self.dims.contains_key(dimension) {
            self.dims.insert(dimension.to_owned(), Dimension::default());
        }
        self.dims.get_mut(dimension).expect("inserted above").row(value)
    }

    pub fn row_count(&self) -> usize {
        self.dims.values().map(|d| d.rows.len()).sum()
    }

    /// An event's event-scoped metrics: the total and the row of each dimension's value.
    pub fn add_event(
        &mut self,
        dimensions: &[String],
        values: &[&str],
        visitor: &str,
        rate: i64,
        is_pageview: bool,
        is_transaction: bool,
    ) -> Result<(), CodecError> {
        let lg_k = self.lg_k;
        let apply = |stats: &mut Stats| {
            stats.add(EVENTS, rate);
            if is_pageview {
                stats.add(PAGEVIEWS, rate);
            }
            if is_transaction {
                stats.add(TRANSACTIONS, rate);
            }
            stats.visitors.add(lg_k, visitor, rate as u64);
        };
        apply(&mut self.total);
        for (dimension, value) in dimensions.iter().zip(values) {
            apply(self.row(dimension, value)?);
        }
        Ok(())
    }

    pub fn add_revenue(&mut self, currency: &str, units: i128) -> Result<(), CodecError> {
        let sum = self.revenue.entry(currency.to_owned()).or_insert(0);
        *sum = sum.checked_add(units).ok_or(CodecError("revenue sum out of range"))?;
        Ok(())
    }

    /// tables/counting.py's _move: replace a session's contribution to this, its start bucket.
    pub fn move_session(
        &mut self,
        dimensions: &[String],
        before: Option<&Contribution<'_>>,
        after: &Contribution<'_>,
        visitor: &str,
    ) -> Result<(), CodecError> {
        let lg_k = self.lg_k;
        let rate = after.sessions;
        let (sessions, bounces, duration) = (after.sessions, after.bounces, after.duration);
        let Some(before) = before else {
            for (counter, n) in [(SESSIONS, sessions), (BOUNCES, bounces), (DURATION_SUM, duration)] {
                self.total.add(counter, n);
            }
            for (dimension, value) in dimensions.iter().zip(&after.values) {
                let row = self.row(dimension, value)?;
                row.add(SESSIONS, sessions);
                row.add(BOUNCES, bounces);
                row.add(DURATION_SUM, duration);
                row.visitors.add(lg_k, visitor, rate as u64);
            }
            return Ok(());
        };
        let d_sessions = sessions - before.sessions;
        let d_bounces = bounces - before.bounces;
        let d_duration = duration - before.duration;
        let changed = d_sessions != 0 || d_bounces != 0 || d_duration != 0;
        if changed {
            self.total.add(SESSIONS, d_sessions);
            self.total.add(BOUNCES, d_bounces);
            self.total.add(DURATION_SUM, d_duration);
        }
        for ((dimension, value), old_value) in
            dimensions.iter().zip(&after.values).zip(&before.values)
        {
            if value == old_value {
                if changed {
                    let row = self.row(dimension, value)?;
                    row.add(SESSIONS, d_sessions);
                    row.add(BOUNCES, d_bounces);
                    row.add(DURATION_SUM, d_duration);
                }
                continue;
            }
            let old = self.row(dimension, old_value)?;
            old.add(SESSIONS, -before.sessions);
            old.add(BOUNCES, -before.bounces);
            old.add(DURATION_SUM, -before.duration);
            let row = self.row(dimension, value)?;
            row.add(SESSIONS, sessions);
            row.add(BOUNCES, bounces);
            row.add(DURATION_SUM, duration);
            row.visitors.add(lg_k, visitor, rate as u64);
        }
        Ok(())
    }

    pub fn encode(&mut self) -> Vec<u8> {
        let lg_k = self.lg_k;
        let mut out = Vec::with_capacity(256);
        put_uint(&mut out, VERSION);
        put_sint(&mut out, self.offset as i128);
        self.total.write(&mut out, lg_k);
        put_uint(&mut out, self.revenue.len() as u128);
        for (currency, units) in &self.revenue {
            put_blob(&mut out, currency.as_bytes());
            put_sint(&mut out, *units);
        }
        put_uint(&mut out, self.dims.len() as u128);
        for (dimension, dim) in self.dims.iter_mut() {
            put_blob(&mut out, dimension.as_bytes());
            out.extend_from_slice(dim.encode_block(lg_k));
        }
        out
    }

    pub fn decode(data: &[u8], lg_k: u8) -> Result<Bucket, CodecError> {
        let mut r = Reader::new(data);
        if r.uint()? != VERSION {
            return Err(CodecError("bucket value version is not 1"));
        }
        let offset = i64::try_from(r.sint()?).map_err(|_| CodecError("offset out of range"))?;
        let mut bucket = Bucket::new(lg_k);
        bucket.offset = offset;
        bucket.total = Stats::read(&mut r)?;
        for _ in 0..r.uint()? {
            let currency = r.text()?;
            let units = r.sint()?;
            bucket.revenue.insert(currency, units);
        }
        for _ in 0..r.uint()? {
            let dimension = r.text()?;
            let start = r.pos;
            let mut rows = Map::default();
            for _ in 0..r.uint()? {
                let value = r.text()?;
                rows.insert(value, Row::Stored(r.blob()?.to_vec()));
            }
            let block = Some(r.since(start).to_vec());
            bucket.dims.insert(dimension, Dimension { rows, block });
        }
        if !r.at_end() {
            return Err(CodecError("trailing bytes after bucket value"));
        }
        Ok(bucket)
    }
}
