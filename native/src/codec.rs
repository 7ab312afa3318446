//! tables/codec.py's encoding: zigzag varints, length-prefixed strings and byte strings.

pub fn put_uint(out: &mut Vec<u8>, mut n: u128) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Python's `(n << 1) ^ (n >> 63) if n < 0 else n << 1`, for the values it is given.
pub fn put_sint(out: &mut Vec<u8>, n: i128) {
    let z = if n < 0 { (n << 1) ^ (n >> 63) } else { n << 1 };
    put_uint(out, z as u128);
}

pub fn put_blob(out: &mut Vec<u8>, data: &[u8]) {
    put_uint(out, data.len() as u128);
    out.extend_from_slice(data);
}

#[derive(Debug)]
pub struct CodecError(pub &'static str);

pub struct Reader<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn uint(&mut self) -> Result<u128, CodecError> {
        let mut n: u128 = 0;
        let mut shift = 0u32;
        loop {
            let byte = *self.data.get(self.pos).ok_or(CodecError("truncated value"))?;
            self.pos += 1;
            if shift >= 128 {
                return Err(CodecError("varint too long"));
            }
            n |= ((byte & 0x7F) as u128) << shift;
            if byte < 0x80 {
                return Ok(n);
            }
            shift += 7;
        }
    }

    pub fn sint(&mut self) -> Result<i128, CodecError> {
        let z = self.uint()?;
        Ok(((z >> 1) as i128) ^ -((z & 1) as i128))
    }

    pub fn blob(&mut self) -> Result<&'a [u8], CodecError> {
        let size = usize::try_from(self.uint()?).map_err(|_| CodecError("truncated value"))?;
        let end = self.pos.checked_add(size).ok_or(CodecError("truncated value"))?;
        if end > self.data.len() {
            return Err(CodecError("truncated value"));
        }
        let chunk = &self.data[self.pos..end];
        self.pos = end;
        Ok(chunk)
    }

    pub fn text(&mut self) -> Result<String, CodecError> {
        let raw = self.blob()?;
        String::from_utf8(raw.to_vec()).map_err(|_| CodecError("text is not UTF-8"))
    }

    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.data[start..self.pos]
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }
}
