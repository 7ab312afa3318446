//! footfall._core: the minute buckets of tables/buckets.py in native memory, for the
//! counting (tables/counting.py). footfall/native.py builds it; docs/stream.md says why.

mod bucket;
mod codec;
mod counter;
mod session;
mod visitors;

use std::collections::BTreeMap;

// Counting allocates small keys, texts and rows by the million; mimalloc serves them
// faster than the system allocator. Rust's allocations only: Python keeps its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyTuple};

use crate::bucket::{Contribution, N_COUNTERS};
use crate::codec::CodecError;

/// Maps keyed by what clients send (sites, visitors, dimension values): ahash, randomly
/// keyed, so that no chosen keys can make them slow, and much faster than SipHash.
pub(crate) type Map<K, V> = indexmap::IndexMap<K, V, ahash::RandomState>;
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// The dimensions of an event's rows and of a session's, in the order of their values.
static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// What tables/counting.py takes from footfall.metrics, given once by `configure`.
#[derive(PartialEq, Clone)]
pub struct Layout {
    pub event_rows: Vec<String>,
    pub session_rows: Vec<String>,
    /// envelope fields of the session attributes, of exit_page, of the event dimensions
    pub start_fields: Vec<String>,
    pub exit_field: String,
    pub event_fields: Vec<String>,
    /// per event combination, per member: its field and its position in the attributes
    pub event_combinations: Vec<Vec<(String, Option<usize>)>>,
    /// per session combination: its members' positions in the attributes
    pub session_combinations: Vec<Vec<usize>>,
    pub pageview: String,
    pub sep: String,
    pub standin: String,
}
const COUNTERS: [&str; N_COUNTERS] =
    ["events", "pageviews", "transactions", "sessions", "bounces", "duration_sum"];

impl From<CodecError> for PyErr {
    fn from(err: CodecError) -> PyErr {
        PyValueError::new_err(err.0)
    }
}

/// Check the counters' order and set what counting takes from footfall.metrics (once per
/// process: a second call must give the same).
#[pyfunction]
#[pyo3(signature = (counters, *, event_rows, session_rows, start_fields, exit_field, event_fields, event_combinations, session_combinations, pageview, sep, standin))]
#[allow(clippy::too_many_arguments)]
fn configure(
    counters: Vec<String>,
    event_rows: Vec<String>,
    session_rows: Vec<String>,
    start_fields: Vec<String>,
    exit_field: String,
    event_fields: Vec<String>,
    event_combinations: Vec<Vec<(String, Option<usize>)>>,
    session_combinations: Vec<Vec<usize>>,
    pageview: String,
    sep: String,
    standin: String,
) -> PyResult<()> {
    if counters != COUNTERS {
        return Err(PyValueError::new_err(format!(
            "footfall._core counts {COUNTERS:?}, footfall.metrics says {counters:?}"
        )));
    }
    let n = start_fields.len();
    let in_range = |i: &usize| *i < n;
    if !event_combinations.iter().flatten().filter_map(|(_, i)| i.as_ref()).all(in_range)
        || !session_combinations.iter().flatten().all(in_range)
        || session_rows.len() != n + session_combinations.len() + 1
        || event_rows.len() != event_fields.len() + event_combinations.len()
    {
        return Err(PyValueError::new_err("footfall._core: the rows do not match the fields"));
    }
    let wanted = Layout {
        event_rows,
        session_rows,
        start_fields,
        exit_field,
        event_fields,
        event_combinations,
        session_combinations,
        pageview,
        sep,
        standin,
    };
    let set = LAYOUT.get_or_init(|| wanted.clone());
    if *set != wanted {
        return Err(PyValueError::new_err("footfall._core is configured already, differently"));
    }
    Ok(())
}

pub(crate) fn layout() -> PyResult<&'static Layout> {
    LAYOUT.get().ok_or_else(|| PyValueError::new_err("footfall._core is not configured"))
}

/// The texts of a tuple, read in place from their Python strings (no copies).
fn texts(tuple: &Bound<'_, PyTuple>, expected: usize) -> PyResult<Vec<PyBackedStr>> {
    if tuple.len() != expected {
        return Err(PyValueError::new_err(format!(
            "{} values where the layout has {expected} rows",
            tuple.len()
        )));
    }
    tuple.iter().map(|item| item.extract::<PyBackedStr>()).collect()
}

pub(crate) fn check_lg_k(lg_k: u8) -> PyResult<u8> {
    if (4..=21).contains(&lg_k) {
        Ok(lg_k)
    } else {
        Err(PyValueError::new_err(format!("lg_k {lg_k} is outside 4..21")))
    }
}

/// A Python contribution tuple's numbers, and its values' texts.
struct PyContribution {
    sessions: i64,
    bounces: i64,
    duration: i64,
    values: Vec<PyBackedStr>,
}

impl PyContribution {
    fn read(tuple: &Bound<'_, PyTuple>, rows: usize) -> PyResult<Self> {
        let values = tuple.get_item(3)?;
        Ok(PyContribution {
            sessions: tuple.get_item(0)?.extract()?,
            bounces: tuple.get_item(1)?.extract()?,
            duration: tuple.get_item(2)?.extract()?,
            values: texts(values.downcast::<PyTuple>()?, rows)?,
        })
    }

    fn borrow(&self) -> Contribution<'_> {
        Contribution {
            sessions: self.sessions,
            bounces: self.bounces,
            duration: self.duration,
            values: self.values.iter().map(|v| &**v).collect(),
        }
    }
}

/// One site's minute of one partition (tables/buckets.py's Bucket, as counting writes it).
#[pyclass(module = "footfall._core", name = "Bucket")]
pub struct PyBucket {
    pub(crate) inner: bucket::Bucket,
}

/// A visitor's session and recent event ids (tables/sessions.py's Session, as counting
/// writes it).
#[pyclass(module = "footfall._core", name = "Session")]
pub struct PySession {
    pub(crate) inner: session::Session,
}

#[pymethods]
impl PySession {
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PySession { inner: session::Session::decode(data)? })
    }

    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode())
    }
}

#[pymethods]
impl PyBucket {
    #[new]
    pub(crate) fn new(lg_k: u8) -> PyResult<Self> {
        Ok(PyBucket { inner: bucket::Bucket::new(check_lg_k(lg_k)?) })
    }

    #[staticmethod]
    pub(crate) fn decode(data: &[u8], lg_k: u8) -> PyResult<Self> {
        Ok(PyBucket { inner: bucket::Bucket::decode(data, check_lg_k(lg_k)?)? })
    }

    #[getter]
    fn offset(&self) -> i64 {
        self.inner.offset
    }

    #[setter]
    fn set_offset(&mut self, offset: i64) {
        self.inner.offset = offset;
    }

    /// Count an event in the total and in its rows (`values` in the layout's event_rows order).
    fn add_event(
        &mut self,
        values: &Bound<'_, PyTuple>,
        visitor: &str,
        rate: i64,
        is_pageview: bool,
        is_transaction: bool,
    ) -> PyResult<()> {
        let dimensions = &layout()?.event_rows;
        let values = texts(values, dimensions.len())?;
        let values: Vec<&str> = values.iter().map(|v| &**v).collect();
        Ok(self.inner.add_event(dimensions, &values, visitor, rate, is_pageview, is_transaction)?)
    }

    fn add_revenue(&mut self, currency: &str, units: i128) -> PyResult<()> {
        Ok(self.inner.add_revenue(currency, units)?)
    }

    /// Replace a session's contribution (`before` None: a new session).
    #[pyo3(signature = (before, after, visitor))]
    fn move_session(
        &mut self,
        before: Option<&Bound<'_, PyTuple>>,
        after: &Bound<'_, PyTuple>,
        visitor: &str,
    ) -> PyResult<()> {
        let dimensions = &layout()?.session_rows;
        let before = before.map(|t| PyContribution::read(t, dimensions.len())).transpose()?;
        let after = PyContribution::read(after, dimensions.len())?;
        let before = before.as_ref().map(PyContribution::borrow);
        let after = after.borrow();
        Ok(self.inner.move_session(dimensions, before.as_ref(), &after, visitor)?)
    }

    fn encode<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode())
    }

    /// (the total's counters, its visitors estimate, revenue by currency, highest rate):
    /// the bucket's InfluxDB point (agents/sink.py).
    fn point(&self) -> (Vec<i64>, f64, BTreeMap<String, i128>, u64) {
        let total = &self.inner.total;
        (
            total.counts.to_vec(),
            total.visitors.estimate(),
            self.inner.revenue.clone(),
            total.visitors.max_rate(),
        )
    }

    fn row_count(&self) -> usize {
        self.inner.row_count()
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_class::<PyBucket>()?;
    m.add_class::<PySession>()?;
    m.add_class::<counter::PyCounter>()?;
    Ok(())
}
