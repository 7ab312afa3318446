//! footfall/visitors.py's `Visitors`: an HLL sketch per sample rate, the first visitor of
//! a row held as text until a second one comes. Same stored bytes, same estimates.

use std::collections::BTreeMap;

use datasketches::hash::value::raw_bytes;
use datasketches::hll::{HllSketch, HllType};

use crate::codec::CodecError;

/// Byte 7 of a serialized HLL sketch: its mode in the low two bits (2: the register array).
const MODE_BYTE: usize = 7;
const MODE_HLL: u8 = 2;
/// Byte 5: flags. The C++ library's compact form of a register array sets COMPACT (8); the
/// Rust port writes the updatable form, whose bytes are otherwise the same for HLL_8.
const FLAGS_BYTE: usize = 5;
const COMPACT_FLAG: u8 = 8;

pub fn new_sketch(lg_k: u8) -> HllSketch {
    HllSketch::new(lg_k, HllType::Hll8).expect("lg_k checked when the core is configured")
}

pub fn update(sketch: &mut HllSketch, visitor: &str) {
    // The C++ library (and so the `datasketches` package) ignores an empty string.
    if !visitor.is_empty() {
        sketch.update(raw_bytes::from_str(visitor));
    }
}

pub fn serialize_compact(sketch: &HllSketch) -> Vec<u8> {
    let mut bytes = sketch.serialize();
    if bytes.len() > MODE_BYTE && bytes[MODE_BYTE] & 3 == MODE_HLL {
        bytes[FLAGS_BYTE] |= COMPACT_FLAG;
    }
    bytes
}

// A SET-mode image: preamble ints byte, lg_arr byte, the coupon count at bytes 8-11, then
// the coupons (a compact image has only the coupons, in its table's slot order).
const PREAMBLE_INTS_BYTE: usize = 0;
const LG_ARR_BYTE: usize = 4;
const MODE_SET: u8 = 1;
const SET_PREAMBLE_INTS: u8 = 3;
const SET_COUNT_START: usize = 8;
const SET_COUPONS_START: usize = 12;
const LG_INIT_SET_SIZE: u32 = 5;
const KEY_MASK_26: u32 = (1 << 26) - 1;

/// A sketch from its stored bytes, laid out as the C++ library would lay it out.
///
/// A compact SET image lists its coupons without their table slots. The C++ library reads
/// it by inserting them one by one into a new table of the initial size, growing it as it
/// goes; the Rust port inserts them into a table of the final size at once. Either holds
/// the same coupons, but not in the same slots, and a sketch writes its coupons in slot
/// order: the bytes written after more updates would differ from the Python buckets'.
/// So such an image is read here as C++ reads it, and given to the port as an updatable
/// image (which carries the slots).
pub fn deserialize(raw: &[u8]) -> Result<HllSketch, CodecError> {
    let bad = |_| CodecError("not an HLL sketch");
    let compact_set = raw.len() >= SET_COUPONS_START
        && raw[PREAMBLE_INTS_BYTE] == SET_PREAMBLE_INTS
        && raw[MODE_BYTE] & 3 == MODE_SET
        && raw[FLAGS_BYTE] & COMPACT_FLAG != 0;
    if !compact_set {
        return HllSketch::deserialize(raw).map_err(bad);
    }
    let count = u32::from_le_bytes(raw[SET_COUNT_START..SET_COUPONS_START].try_into().expect("4"));
    let end = (count as usize)
        .checked_mul(4)
        .and_then(|n| n.checked_add(SET_COUPONS_START))
        .filter(|&end| end <= raw.len())
        .ok_or(CodecError("not an HLL sketch"))?;
    let mut table = CouponTable::new(LG_INIT_SET_SIZE);
    for chunk in raw[SET_COUPONS_START..end].chunks_exact(4) {
        table.insert(u32::from_le_bytes(chunk.try_into().expect("4")));
    }
    let mut image = raw[..SET_COUPONS_START].to_vec();
    image[LG_ARR_BYTE] = table.lg_arr as u8;
    image[FLAGS_BYTE] &= !COMPACT_FLAG;
    image[SET_COUNT_START..SET_COUPONS_START].copy_from_slice(&table.count.to_le_bytes());
    for slot in &table.slots {
        image.extend_from_slice(&slot.to_le_bytes());
    }
    HllSketch::deserialize(&image).map_err(bad)
}

/// The C++ library's CouponHashSet table: open addressing, grown at three quarters full.
struct CouponTable {
    lg_arr: u32,
    slots: Vec<u32>,
    count: u32,
}

impl CouponTable {
    fn new(lg_arr: u32) -> Self {
        CouponTable { lg_arr, slots: vec![0; 1 << lg_arr], count: 0 }
    }

    fn insert(&mut self, coupon: u32) {
        let mask = (1u32 << self.lg_arr) - 1;
        let mut probe = coupon & mask;
        let start = probe;
        loop {
            let there = self.slots[probe as usize];
            if there == 0 {
                self.slots[probe as usize] = coupon;
                self.count += 1;
                if 4 * self.count > 3 * (1u32 << self.lg_arr) {
                    self.grow();
                }
                return;
            }
            if there == coupon {
                return;
            }
            let stride = ((coupon & KEY_MASK_26) >> self.lg_arr) | 1;
            probe = (probe + stride) & mask;
            if probe == start {
                return; // full: cannot happen below three quarters
            }
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, CouponTable::new(self.lg_arr + 1));
        for coupon in old.slots.into_iter().filter(|&c| c != 0) {
            self.insert(coupon);
        }
    }
}

pub enum Visitors {
    Empty,
    Sole { visitor: String, rate: u64 },
    Sketches(BTreeMap<u64, HllSketch>),
}

impl Visitors {
    pub fn add(&mut self, lg_k: u8, visitor: &str, rate: u64) {
        match self {
            Visitors::Empty => {
                if !visitor.is_empty() {
                    *self = Visitors::Sole { visitor: visitor.to_owned(), rate };
                    return;
                }
                *self = Visitors::Sketches(BTreeMap::new());
            }
            Visitors::Sole { visitor: sole, rate: sole_rate } => {
                if *sole_rate == rate && sole == visitor {
                    return; // a sketch updated twice with one value is unchanged
                }
                let mut sketch = new_sketch(lg_k);
                update(&mut sketch, sole);
                let mut by_rate = BTreeMap::new();
                by_rate.insert(*sole_rate, sketch);
                *self = Visitors::Sketches(by_rate);
            }
            Visitors::Sketches(_) => {}
        }
        if let Visitors::Sketches(by_rate) = self {
            update(by_rate.entry(rate).or_insert_with(|| new_sketch(lg_k)), visitor);
        }
    }

    pub fn estimate(&self) -> f64 {
        match self {
            Visitors::Empty => 0.0,
            Visitors::Sole { rate, .. } => *rate as f64,
            Visitors::Sketches(by_rate) => {
                by_rate.iter().map(|(rate, sketch)| *rate as f64 * sketch.estimate()).sum()
            }
        }
    }

    pub fn max_rate(&self) -> u64 {
        match self {
            Visitors::Empty => 1,
            Visitors::Sole { rate, .. } => *rate,
            Visitors::Sketches(by_rate) => by_rate.keys().next_back().copied().unwrap_or(1),
        }
    }

    /// (rate, compact sketch bytes) in rate order: the stored form.
    pub fn items(&self, lg_k: u8) -> Vec<(u64, Vec<u8>)> {
        match self {
            Visitors::Empty => Vec::new(),
            Visitors::Sole { visitor, rate } => {
                let mut sketch = new_sketch(lg_k);
                update(&mut sketch, visitor);
                vec![(*rate, serialize_compact(&sketch))]
            }
            Visitors::Sketches(by_rate) => {
                by_rate.iter().map(|(rate, sketch)| (*rate, serialize_compact(sketch))).collect()
            }
        }
    }

    pub fn from_items(items: Vec<(u64, &[u8])>) -> Result<Visitors, CodecError> {
        let mut by_rate = BTreeMap::new();
        for (rate, raw) in items {
            let sketch = deserialize(raw)?;
            by_rate.insert(rate, sketch);
        }
        Ok(Visitors::Sketches(by_rate))
    }
}
