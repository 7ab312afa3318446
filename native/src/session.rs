//! tables/sessions.py's `Session`: a visitor's current session and recent event ids, stored
//! as the same JSON array (orjson's bytes: compact, only what JSON requires escaped).

use crate::Map;
use serde_json::Value;

use crate::codec::CodecError;

const VERSION: i64 = 1;

#[derive(Clone)]
pub struct Session {
    pub partition: i64,
    pub offset: i64,
    pub start: i64,
    pub last: i64,
    pub events: i64,
    pub pageviews: i64,
    pub rate: i64,
    pub attributes: Vec<String>,
    pub exit_page: String,
    pub exit_time: i64,
    pub last_received: i64,
    /// id -> received_at, oldest first
    pub ids: Map<String, i64>,
}

impl Session {
    /// Add an id; forget ids older than the window and the oldest beyond `max_ids`.
    pub fn remember(&mut self, event_id: &str, received_at: i64, window_ms: i64, max_ids: usize) {
        match self.ids.get_mut(event_id) {
            Some(at) => *at = received_at,
            None => {
                self.ids.insert(event_id.to_owned(), received_at);
            }
        }
        if received_at > self.last_received {
            self.last_received = received_at;
        }
        let horizon = self.last_received - window_ms;
        let mut drop = self.ids.len().saturating_sub(max_ids);
        while drop < self.ids.len() && self.ids[drop] < horizon {
            drop += 1;
        }
        if drop > 0 {
            self.ids.drain(..drop);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + 48 * self.ids.len());
        out.push(b'[');
        for n in [
            VERSION,
            self.partition,
            self.offset,
            self.start,
            self.last,
            self.events,
            self.pageviews,
            self.rate,
        ] {
            put_int(&mut out, n);
            out.push(b',');
        }
        out.push(b'[');
        for (i, attribute) in self.attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put_str(&mut out, attribute);
        }
        out.extend_from_slice(b"],");
        put_str(&mut out, &self.exit_page);
        out.push(b',');
        put_int(&mut out, self.exit_time);
        out.push(b',');
        put_int(&mut out, self.last_received);
        out.extend_from_slice(b",[");
        for (i, (id, received)) in self.ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put_str(&mut out, id);
            out.push(b',');
            put_int(&mut out, *received);
        }
        out.extend_from_slice(b"]]");
        out
    }

    pub fn decode(data: &[u8]) -> Result<Session, CodecError> {
        let bad = CodecError("bad session value");
        let value: Value = serde_json::from_slice(data).map_err(|_| CodecError("bad session value"))?;
        let items = value.as_array().ok_or(CodecError("bad session value"))?;
        if items.len() != 13 {
            return Err(bad);
        }
        let int = |i: usize| items[i].as_i64().ok_or(CodecError("bad session value"));
        let text = |v: &Value| v.as_str().map(str::to_owned).ok_or(CodecError("bad session value"));
        if int(0)? != VERSION {
            return Err(CodecError("session value version is not 1"));
        }
        let attributes = items[8]
            .as_array()
            .ok_or(CodecError("bad session value"))?
            .iter()
            .map(text)
            .collect::<Result<Vec<_>, _>>()?;
        let flat = items[12].as_array().ok_or(CodecError("bad session value"))?;
        if flat.len() % 2 != 0 {
            return Err(CodecError("bad session value"));
        }
        let mut ids = Map::with_capacity_and_hasher(flat.len() / 2, Default::default());
        for pair in flat.chunks_exact(2) {
            let received = pair[1].as_i64().ok_or(CodecError("bad session value"))?;
            ids.insert(text(&pair[0])?, received);
        }
        Ok(Session {
            partition: int(1)?,
            offset: int(2)?,
            start: int(3)?,
            last: int(4)?,
            events: int(5)?,
            pageviews: int(6)?,
            rate: int(7)?,
            attributes,
            exit_page: text(&items[9])?,
            exit_time: int(10)?,
            last_received: int(11)?,
            ids,
        })
    }
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// A JSON string as orjson writes it: `"` and `\` escaped, control characters as \b \t \n
/// \f \r or \u00xx, everything else (DEL and non-ASCII included) as it is.
fn put_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(byte >> 4) as usize]);
                out.push(HEX[(byte & 15) as usize]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}
