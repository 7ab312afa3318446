//! tables/counting.py's BatchCounter with its records in native memory: the same rules, in
//! the same order, so that the same batches leave the same bytes (tests/unit/stream/
//! test_native.py counts a workload both ways). The module docstring there explains them.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};

use crate::bucket::Contribution;
use crate::session::Session;
use crate::{layout, HashMap, Layout, Map, PyBucket, PySession};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
const REVENUE_SCALE: i128 = 1_000_000;

/// The settings counting depends on (tables/counting.py's CountingRules).
#[derive(Clone, Copy)]
pub struct Rules {
    pub session_timeout_s: i64,
    pub dedupe_window_ms: i64,
    pub dedupe_max_ids: usize,
    pub retention_ms: i64,
    pub lg_k: u8,
}

/// `site|visitor`: footfall.events.kafka_key.
fn session_key(site: &str, visitor: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(site.len() + visitor.len() + 1);
    key.extend_from_slice(site.as_bytes());
    key.push(b'|');
    key.extend_from_slice(visitor.as_bytes());
    key
}

/// `site|minute|partition`: tables.buckets.bucket_key.
fn bucket_key(site: &str, minute: i64, partition: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(site.len() + 24);
    key.extend_from_slice(site.as_bytes());
    let mut digits = itoa::Buffer::new();
    for n in [minute, partition] {
        key.push(b'|');
        key.extend_from_slice(digits.format(n).as_bytes());
    }
    key
}

fn minute_of(t: i64) -> i64 {
    t - t.rem_euclid(MINUTE_MS)
}

fn starts_new_session(previous: i64, t: i64, timeout_s: i64) -> bool {
    t.div_euclid(DAY_MS) != previous.div_euclid(DAY_MS) || t - previous > timeout_s * 1000
}

/// footfall.metrics.revenue_units: round(amount * 1_000_000), halves to even. Python's ints
/// have no bound; these are 128 bits, far beyond footfall.events.MAX_REVENUE_AMOUNT (the
/// worker leaves out larger amounts before they get here: agents/count.py).
fn revenue_units(amount: &Bound<'_, PyAny>) -> PyResult<i128> {
    if let Ok(float) = amount.downcast::<PyFloat>() {
        let scaled = (float.value() * REVENUE_SCALE as f64).round_ties_even();
        // 2^126: any product with a rate and any sum of them still fits, and is checked.
        if !scaled.is_finite() || scaled.abs() >= 8.5e37 {
            return Err(PyValueError::new_err("revenue amount out of range"));
        }
        return Ok(scaled as i128);
    }
    if amount.is_instance_of::<PyBool>() {
        return Ok(if amount.is_truthy()? { REVENUE_SCALE } else { 0 });
    }
    let whole: i128 = amount.extract()?;
    whole.checked_mul(REVENUE_SCALE).ok_or_else(|| PyValueError::new_err("revenue amount too large"))
}

fn combination_value(values: &[&str], layout: &Layout) -> String {
    let sep = layout.sep.as_str();
    if values.iter().any(|v| v.contains(sep)) {
        let cleaned: Vec<String> = values.iter().map(|v| v.replace(sep, &layout.standin)).collect();
        return cleaned.join(sep);
    }
    values.join(sep)
}

/// An event field's text: the value if it is a non-empty string, else "" (ABSENT_VALUE).
fn text(event: &Bound<'_, PyDict>, field: &Bound<'_, PyString>) -> PyResult<Option<PyBackedStr>> {
    match event.get_item(field)? {
        Some(value) => match value.downcast_into::<PyString>() {
            Ok(s) => {
                let s: PyBackedStr = s.try_into()?;
                Ok(if s.is_empty() { None } else { Some(s) })
            }
            Err(_) => Ok(None),
        },
        None => Ok(None),
    }
}

fn required<'py>(event: &Bound<'py, PyDict>, field: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    event
        .get_item(field)?
        .ok_or_else(|| PyValueError::new_err(format!("event without {field}")))
}

/// The values of an event's combination rows: per member, the session's attribute when
/// it has a position there and the event is in a session, else the event's own field.
fn event_combinations(
    members_texts: &[Vec<(Option<PyBackedStr>, Option<usize>)>],
    attributes: Option<&Vec<String>>,
    layout: &Layout,
) -> Vec<String> {
    members_texts
        .iter()
        .map(|members| {
            let values: Vec<&str> = members
                .iter()
                .map(|(own, position)| match (position, attributes) {
                    (Some(i), Some(attributes)) => attributes[*i].as_str(),
                    _ => own.as_deref().unwrap_or(""),
                })
                .collect();
            combination_value(&values, layout)
        })
        .collect()
}

fn contribution_of(session: &Session, layout: &Layout) -> OwnedContribution {
    let rate = session.rate;
    let attributes: Vec<&str> = session.attributes.iter().map(String::as_str).collect();
    let mut values: Vec<String> = session.attributes.clone();
    for positions in &layout.session_combinations {
        let members: Vec<&str> = positions.iter().map(|&i| attributes[i]).collect();
        values.push(combination_value(&members, layout));
    }
    values.push(session.exit_page.clone());
    OwnedContribution {
        sessions: rate,
        bounces: if session.events == 1 { rate } else { 0 },
        duration: rate * (session.last - session.start),
        values,
    }
}

struct OwnedContribution {
    sessions: i64,
    bounces: i64,
    duration: i64,
    values: Vec<String>,
}

impl OwnedContribution {
    fn borrow(&self) -> Contribution<'_> {
        Contribution {
            sessions: self.sessions,
            bounces: self.bounces,
            duration: self.duration,
            values: self.values.iter().map(String::as_str).collect(),
        }
    }
}

/// A session's change to its start bucket, applied once at the end of the batch.
struct PendingMove {
    bucket: Py<PyBucket>,
    before: Option<OwnedContribution>,
    session: Py<PySession>,
    visitor: String,
}

impl PendingMove {
    fn finish(&self, py: Python<'_>, layout: &Layout) -> PyResult<()> {
        let after = contribution_of(&self.session.borrow(py).inner, layout);
        let before = self.before.as_ref().map(OwnedContribution::borrow);
        let mut bucket = self.bucket.borrow_mut(py);
        bucket.inner.move_session(&layout.session_rows, before.as_ref(), &after.borrow(), &self.visitor)?;
        Ok(())
    }
}

/// Interned field names, looked up once.
struct Fields {
    site: Py<PyString>,
    visitor: Py<PyString>,
    event_time: Py<PyString>,
    received_at: Py<PyString>,
    bot: Py<PyString>,
    id: Py<PyString>,
    sample_rate: Py<PyString>,
    name: Py<PyString>,
    revenue: Py<PyString>,
    currency: Py<PyString>,
    amount: Py<PyString>,
    start: Vec<Py<PyString>>,
    exit: Py<PyString>,
    event: Vec<Py<PyString>>,
    /// per event combination, per member: the field, and the position in a session's
    /// attributes (None: an event-scoped member)
    event_combinations: Vec<Vec<(Py<PyString>, Option<usize>)>>,
}

impl Fields {
    fn new(py: Python<'_>, layout: &Layout) -> Self {
        let f = |name: &str| PyString::intern(py, name).unbind();
        Fields {
            site: f("site"),
            visitor: f("visitor"),
            event_time: f("event_time"),
            received_at: f("received_at"),
            bot: f("bot"),
            id: f("id"),
            sample_rate: f("sample_rate"),
            name: f("name"),
            revenue: f("revenue"),
            currency: f("currency"),
            amount: f("amount"),
            start: layout.start_fields.iter().map(|n| f(n)).collect(),
            exit: f(&layout.exit_field),
            event: layout.event_fields.iter().map(|n| f(n)).collect(),
            event_combinations: layout
                .event_combinations
                .iter()
                .map(|members| members.iter().map(|(n, i)| (f(n), *i)).collect())
                .collect(),
        }
    }
}

/// Pending moves by session key, in the order they were made: a Python dict's semantics
/// (a key taken out and put back goes last), which decide the order their rows are made in
/// a bucket, so its bytes. Taking one out leaves a hole, not a shift of all later ones.
#[derive(Default)]
struct Moves {
    order: Vec<Option<PendingMove>>,
    index: HashMap<Vec<u8>, usize>,
}

impl Moves {
    fn take(&mut self, key: &[u8]) -> Option<PendingMove> {
        let at = self.index.remove(key)?;
        self.order[at].take()
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    fn put(&mut self, key: Vec<u8>, pending: PendingMove) {
        self.take(&key); // a key put again goes last, as in a dict
        self.index.insert(key, self.order.len());
        self.order.push(Some(pending));
    }

    fn in_order(&self) -> impl Iterator<Item = &PendingMove> {
        self.order.iter().flatten()
    }
}

struct Batch {
    buckets: Map<Vec<u8>, Py<PyBucket>>,
    sessions: Map<Vec<u8>, Py<PySession>>,
    moves: Moves,
    applied: i64,
    stream_time: i64,
}

/// Applies micro-batches of one partition's events (tables/counting.py's BatchCounter).
#[pyclass(module = "footfall._core", name = "BatchCounter")]
pub struct PyCounter {
    rules: Rules,
    load_session: PyObject,
    load_bucket: PyObject,
    cache: Option<PyObject>,
    fields: Fields,
    sessions: HashMap<Vec<u8>, Option<Py<PySession>>>,
    buckets: HashMap<Vec<u8>, Py<PyBucket>>,
}

#[pymethods]
impl PyCounter {
    #[new]
    #[pyo3(signature = (session_timeout_s, dedupe_window_ms, dedupe_max_ids, retention_ms, lg_k, load_session, load_bucket, cache=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        session_timeout_s: i64,
        dedupe_window_ms: i64,
        dedupe_max_ids: usize,
        retention_ms: i64,
        lg_k: u8,
        load_session: PyObject,
        load_bucket: PyObject,
        cache: Option<PyObject>,
    ) -> PyResult<Self> {
        let rules = Rules { session_timeout_s, dedupe_window_ms, dedupe_max_ids, retention_ms, lg_k: crate::check_lg_k(lg_k)? };
        Ok(PyCounter {
            rules,
            load_session,
            load_bucket,
            cache,
            fields: Fields::new(py, layout()?),
            sessions: Default::default(),
            buckets: Default::default(),
        })
    }

    /// Apply (offset, envelope) pairs of one partition, in offset order: (changed buckets,
    /// changed sessions, events newly counted, newest received_at).
    #[allow(clippy::type_complexity)]
    fn apply<'py>(
        &mut self,
        py: Python<'py>,
        partition: i64,
        batch: &Bound<'py, PyList>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>, i64, i64)> {
        let layout = layout()?;
        let mut out = Batch {
            buckets: Map::with_capacity_and_hasher(batch.len() / 4, Default::default()),
            sessions: Map::with_capacity_and_hasher(batch.len(), Default::default()),
            moves: Moves::default(),
            applied: 0,
            stream_time: 0,
        };
        for pair in batch.iter() {
            let pair = pair.downcast_into::<PyTuple>()?;
            let offset: i64 = pair.get_borrowed_item(0)?.extract()?;
            let event = pair.get_borrowed_item(1)?;
            let event = event.downcast::<PyDict>()?;
            let received: i64 = required(event, self.fields.received_at.bind(py))?.extract()?;
            if received > out.stream_time {
                out.stream_time = received;
            }
            if required(event, self.fields.bot.bind(py))?.is_truthy()? {
                continue; // bots are archived but counted in no metric
            }
            self.apply_one(py, layout, &mut out, partition, offset, event, received)?;
        }
        for pending in out.moves.in_order() {
            pending.finish(py, layout)?;
        }
        let buckets = PyDict::new(py);
        for (key, bucket) in out.buckets {
            buckets.set_item(PyBytes::new(py, &key), bucket)?;
        }
        let sessions = PyDict::new(py);
        for (key, session) in out.sessions {
            sessions.set_item(PyBytes::new(py, &key), session)?;
        }
        Ok((buckets, sessions, out.applied, out.stream_time))
    }
}

impl PyCounter {
    fn session(&mut self, py: Python<'_>, key: &[u8]) -> PyResult<Option<Py<PySession>>> {
        if let Some(found) = self.sessions.get(key) {
            return Ok(found.as_ref().map(|s| s.clone_ref(py)));
        }
        let raw = self.load_session.call1(py, (PyBytes::new(py, key),))?;
        let session = if raw.is_none(py) {
            None
        } else {
            let raw = raw.downcast_bound::<PyBytes>(py)?;
            let inner = Session::decode(raw.as_bytes())?;
            if inner.attributes.len() != self.fields.start.len() {
                // Written under other session dimensions: counting must not guess.
                return Err(PyValueError::new_err(format!(
                    "session record with {} attributes, the metrics have {}",
                    inner.attributes.len(),
                    self.fields.start.len()
                )));
            }
            Some(Py::new(py, PySession { inner })?)
        };
        self.sessions.insert(key.to_vec(), session.as_ref().map(|s| s.clone_ref(py)));
        Ok(session)
    }

    fn bucket(&mut self, py: Python<'_>, key: &[u8]) -> PyResult<Py<PyBucket>> {
        if let Some(found) = self.buckets.get(key) {
            return Ok(found.clone_ref(py));
        }
        let py_key = PyBytes::new(py, key);
        let raw = self.load_bucket.call1(py, (&py_key,))?;
        let mut bucket: Option<Py<PyBucket>> = None;
        if let Some(cache) = &self.cache {
            let kept = cache.call_method1(py, "take", (&py_key, &raw))?;
            if !kept.is_none(py) {
                bucket = Some(kept.downcast_bound::<PyBucket>(py).map_err(|_| {
                    PyTypeError::new_err("the bucket cache holds a bucket footfall._core did not make")
                })?.clone().unbind());
            }
        }
        let bucket = match bucket {
            Some(b) => b,
            None if raw.is_none(py) => Py::new(py, PyBucket::new(self.rules.lg_k)?)?,
            None => {
                let raw = raw.downcast_bound::<PyBytes>(py)?;
                Py::new(py, PyBucket::decode(raw.as_bytes(), self.rules.lg_k)?)?
            }
        };
        self.buckets.insert(key.to_vec(), bucket.clone_ref(py));
        Ok(bucket)
    }

    #[allow(clippy::too_many_arguments)]
    fn bucket_at(
        &mut self,
        py: Python<'_>,
        touched: &mut Vec<(Vec<u8>, Option<Py<PyBucket>>)>,
        site: &str,
        minute: i64,
        partition: i64,
        offset: i64,
    ) -> PyResult<Option<Py<PyBucket>>> {
        let key = bucket_key(site, minute, partition);
        if let Some((_, found)) = touched.iter().find(|(k, _)| *k == key) {
            return Ok(found.as_ref().map(|b| b.clone_ref(py)));
        }
        let bucket = self.bucket(py, &key)?;
        let found = if bucket.borrow(py).inner.offset < offset { Some(bucket) } else { None };
        touched.push((key, found.as_ref().map(|b| b.clone_ref(py))));
        Ok(found)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_one(
        &mut self,
        py: Python<'_>,
        layout: &Layout,
        out: &mut Batch,
        partition: i64,
        offset: i64,
        event: &Bound<'_, PyDict>,
        received: i64,
    ) -> PyResult<()> {
        let rules = self.rules;
        let f = &self.fields;
        let site: PyBackedStr = required(event, f.site.bind(py))?.extract()?;
        let visitor: PyBackedStr = required(event, f.visitor.bind(py))?.extract()?;
        let event_time: i64 = required(event, f.event_time.bind(py))?.extract()?;
        let minute = minute_of(event_time);
        if minute < received - rules.retention_ms {
            return Ok(()); // its bucket may be purged already; never recreate a partial one
        }
        let skey = session_key(&site, &visitor);
        let session = self.session(py, &skey)?;
        if let Some(s) = &session {
            if s.borrow(py).inner.offset >= offset {
                return Ok(()); // replay: already in the session and every bucket it touched
            }
        }
        let f = &self.fields;
        let event_id: PyBackedStr = required(event, f.id.bind(py))?.extract()?;
        if let Some(s) = &session {
            if s.borrow(py).inner.ids.contains_key(&*event_id) {
                return Ok(()); // a retried send: counted once
            }
        }
        let rate: i64 = required(event, f.sample_rate.bind(py))?.extract()?;
        let name = text(event, f.name.bind(py))?;
        let is_pageview = name.as_deref() == Some(layout.pageview.as_str());
        let path = text(event, f.exit.bind(py))?;
        let path_text: &str = path.as_deref().unwrap_or("");
        let event_texts = f.event.iter().map(|field| text(event, field.bind(py))).collect::<PyResult<Vec<_>>>()?;
        let combination_texts = f
            .event_combinations
            .iter()
            .map(|members| {
                members
                    .iter()
                    .map(|(field, i)| Ok((text(event, field.bind(py))?, *i)))
                    .collect::<PyResult<Vec<_>>>()
            })
            .collect::<PyResult<Vec<_>>>()?;
        let revenue = match event.get_item(f.revenue.bind(py))? {
            Some(r) if !r.is_none() => {
                let currency: PyBackedStr = r.get_item(f.currency.bind(py))?.extract()?;
                let units = revenue_units(&r.get_item(f.amount.bind(py))?)?
                    .checked_mul(rate as i128)
                    .ok_or_else(|| PyValueError::new_err("revenue out of range"))?;
                Some((currency, units))
            }
            _ => None,
        };

        let mut touched: Vec<(Vec<u8>, Option<Py<PyBucket>>)> = Vec::with_capacity(2);
        let event_bucket = self.bucket_at(py, &mut touched, &site, minute, partition, offset)?;
        // The event's combination values, from its session's attributes when it joins or
        // opens one (computed below), else from its own fields.
        let mut combined: Option<Vec<String>> = None;

        let opens = match &session {
            None => true,
            Some(s) => {
                let s = &s.borrow(py).inner;
                event_time >= s.last && starts_new_session(s.last, event_time, rules.session_timeout_s)
            }
        };
        let session: Py<PySession> = if opens {
            let start_texts = self
                .fields
                .start
                .iter()
                .map(|field| text(event, field.bind(py)))
                .collect::<PyResult<Vec<_>>>()?;
            let ids = match &session {
                Some(s) => std::mem::take(&mut s.borrow_mut(py).inner.ids),
                None => Map::default(),
            };
            if let Some(previous) = out.moves.take(&skey) {
                previous.finish(py, layout)?; // the session this one ends, before it is replaced
            }
            let new = Session {
                partition,
                offset,
                start: event_time,
                last: event_time,
                events: 1,
                pageviews: i64::from(is_pageview),
                rate,
                attributes: start_texts.iter().map(|t| t.as_deref().unwrap_or("").to_owned()).collect(),
                exit_page: if is_pageview { path_text.to_owned() } else { String::new() },
                exit_time: if is_pageview { event_time } else { -1 },
                last_received: received,
                ids,
            };
            combined = Some(event_combinations(&combination_texts, Some(&new.attributes), layout));
            let new = Py::new(py, PySession { inner: new })?;
            if let Some(start_bucket) = self.bucket_at(py, &mut touched, &site, minute, partition, offset)? {
                out.moves.put(
                    skey.clone(),
                    PendingMove { bucket: start_bucket, before: None, session: new.clone_ref(py), visitor: visitor.to_string() },
                );
            }
            new
        } else {
            let session = session.expect("not opening: there is one");
            let start = session.borrow(py).inner.start;
            if event_time >= start {
                combined = Some(event_combinations(
                    &combination_texts,
                    Some(&session.borrow(py).inner.attributes),
                    layout,
                ));
                let start_bucket = self.bucket_at(py, &mut touched, &site, minute_of(start), partition, offset)?;
                if let Some(start_bucket) = start_bucket {
                    if !out.moves.contains(&skey) {
                        let before = contribution_of(&session.borrow(py).inner, layout);
                        out.moves.put(
                            skey.clone(),
                            PendingMove {
                                bucket: start_bucket,
                                before: Some(before),
                                session: session.clone_ref(py),
                                visitor: visitor.to_string(),
                            },
                        );
                    }
                }
                let s = &mut session.borrow_mut(py).inner;
                s.events += 1;
                if event_time > s.last {
                    s.last = event_time;
                }
                if is_pageview {
                    s.pageviews += 1;
                    if event_time >= s.exit_time {
                        s.exit_page = path_text.to_owned();
                        s.exit_time = event_time;
                    }
                }
            }
            // else: earlier than its session's start: event-scoped only.
            session
        };

        if let Some(bucket) = event_bucket {
            let combined =
                combined.unwrap_or_else(|| event_combinations(&combination_texts, None, layout));
            let mut values: Vec<&str> = event_texts.iter().map(|t| t.as_deref().unwrap_or("")).collect();
            values.extend(combined.iter().map(String::as_str));
            let mut b = bucket.borrow_mut(py);
            b.inner.add_event(&layout.event_rows, &values, &visitor, rate, is_pageview, revenue.is_some())?;
            if let Some((currency, units)) = &revenue {
                b.inner.add_revenue(currency, *units)?;
            }
        }

        {
            let s = &mut session.borrow_mut(py).inner;
            s.offset = offset;
            s.remember(&event_id, received, rules.dedupe_window_ms, rules.dedupe_max_ids);
        }
        self.sessions.insert(skey.clone(), Some(session.clone_ref(py)));
        out.sessions.insert(skey, session);
        for (key, bucket) in touched {
            if let Some(bucket) = bucket {
                bucket.borrow_mut(py).inner.offset = offset;
                out.buckets.insert(key, bucket);
            }
        }
        out.applied += 1;
        Ok(())
    }
}
