//! A bounded reader over untrusted bytes: every read is checked, every offset is absolute.

use crate::error::{DecodeError, ErrorKind};

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the original input.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    pub(crate) fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.left() == 0
    }

    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let have = self.left();
        let end = self.pos.checked_add(n).filter(|_| n <= have);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(DecodeError::new(
                self.offset(),
                ErrorKind::Truncated {
                    what,
                    need: n,
                    have,
                },
            )),
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let s = self.take(1, what)?;
        Ok(s.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let s = self.take(2, what)?;
        let mut b = [0u8; 2];
        b.copy_from_slice(s);
        Ok(u16::from_be_bytes(b))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let s = self.take(4, what)?;
        let mut b = [0u8; 4];
        b.copy_from_slice(s);
        Ok(u32::from_be_bytes(b))
    }

    /// Reads one `tag | u16 length | value` element; the value must fit in what is left.
    /// Returns (offset of the tag, tag, value).
    pub(crate) fn tlv(
        &mut self,
        within: &'static str,
    ) -> Result<(usize, u8, &'a [u8]), DecodeError> {
        let start = self.offset();
        let tag = self.u8("tag")?;
        let len = usize::from(self.u16("length")?);
        let left = self.left();
        if len > left {
            return Err(DecodeError::new(
                start,
                ErrorKind::LengthOverrun {
                    tag,
                    len,
                    left,
                    within,
                },
            ));
        }
        let value = self.take(len, "value")?;
        Ok((start, tag, value))
    }
}

/// Writes `tag | u16 len | value`. Callers guarantee `value.len() <= u16::MAX` (types check it).
pub(crate) fn put_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// The set of tags seen in one scope, to refuse duplicates (bad-inputs T5).
#[derive(Debug, Clone, Default)]
pub(crate) struct TagSet([u64; 4]);

impl TagSet {
    /// Adds `tag`; false when it was already there.
    pub(crate) fn insert(&mut self, tag: u8) -> bool {
        let word = self.0.get_mut(usize::from(tag >> 6));
        let bit = 1u64.wrapping_shl(u32::from(tag & 63));
        match word {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }
}
