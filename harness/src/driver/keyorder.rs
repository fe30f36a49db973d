//! The loaded keys in the engine's order (bytewise), so a scan can be checked for keys it
//! skipped: between two keys a scan returns, no loaded key may be missing, and a scan that
//! ends short of its length must have reached the last loaded key. Valid only while loaded
//! keys cannot disappear (no deletes in the workload).

use crate::gen::KeyEncoder;

/// Loaded keys the order is built for (8 bytes of index each, and the encoding at build time:
/// about a second per 4M keys). Past it, scans are checked for order and content only.
pub const KEY_ORDER_KEYS_MAX: u64 = 1 << 22;

/// Indexes `0..record_count` sorted by their encoded keys.
pub struct KeyOrder {
    keys: KeyEncoder,
    sorted: Vec<u64>,
}

/// Where a scan stands against the loaded keys: the position of the next loaded key it must
/// return.
pub struct ScanCursor {
    next: usize,
    buf: Vec<u8>,
}

impl KeyOrder {
    /// The order of `0..record_count`, or None past [`KEY_ORDER_KEYS_MAX`].
    #[must_use]
    pub fn build(keys: &KeyEncoder, record_count: u64) -> Option<KeyOrder> {
        if record_count > KEY_ORDER_KEYS_MAX {
            return None;
        }
        let mut pairs: Vec<(Vec<u8>, u64)> = (0..record_count).map(|i| (keys.key(i), i)).collect();
        pairs.sort_unstable();
        // Hashed YCSB keys can collide: two indexes under one key are one key to a scan.
        pairs.dedup_by(|b, a| a.0 == b.0);
        let sorted = pairs.into_iter().map(|(_, i)| i).collect();
        Some(KeyOrder {
            keys: keys.clone(),
            sorted,
        })
    }

    /// A cursor for a scan from `start` (the first loaded key at or after it).
    #[must_use]
    pub fn cursor(&self, start: &[u8]) -> ScanCursor {
        let mut buf = Vec::new();
        let next = self.sorted.partition_point(|&i| {
            self.keys.encode(i, &mut buf);
            buf.as_slice() < start
        });
        ScanCursor { next, buf }
    }

    /// The scan returned `key`: every loaded key before it must have come first.
    ///
    /// # Errors
    /// The first loaded key the scan skipped.
    pub fn step(&self, cursor: &mut ScanCursor, key: &[u8]) -> Result<(), String> {
        let Some(&expected) = self.sorted.get(cursor.next) else {
            return Ok(()); // Past the last loaded key: only inserted keys remain.
        };
        self.keys.encode(expected, &mut cursor.buf);
        match cursor.buf.as_slice().cmp(key) {
            std::cmp::Ordering::Less => Err(format!(
                "scan skipped loaded key {expected} before returning {}",
                super::worker::hex_prefix(key)
            )),
            std::cmp::Ordering::Equal => {
                cursor.next += 1;
                Ok(())
            }
            std::cmp::Ordering::Greater => Ok(()), // An inserted key between loaded ones.
        }
    }

    /// The scan ended, having returned `returned` of at most `len` keys.
    ///
    /// # Errors
    /// A short scan that did not reach the last loaded key.
    pub fn end(&self, cursor: &ScanCursor, returned: usize, len: usize) -> Result<(), String> {
        match self.sorted.get(cursor.next) {
            Some(&missing) if returned < len => Err(format!(
                "scan ended after {returned} of {len} keys, before loaded key {missing}"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::KeyEncodingSpec;

    fn order() -> Result<(KeyEncoder, KeyOrder), String> {
        let keys = KeyEncoder::new(
            &KeyEncodingSpec::Ycsb {
                hashed: true,
                pad_digits: 20,
            },
            1,
        )
        .map_err(|e| e.to_string())?;
        let order = KeyOrder::build(&keys, 100).ok_or("no order")?;
        Ok((keys, order))
    }

    #[test]
    fn a_complete_scan_passes_and_a_skip_fails() -> Result<(), String> {
        let (keys, order) = order()?;
        let mut all: Vec<Vec<u8>> = (0..100).map(|i| keys.key(i)).collect();
        all.sort();
        let mut cursor = order.cursor(&all[10]);
        for k in &all[10..20] {
            order.step(&mut cursor, k)?;
        }
        order.end(&cursor, 10, 10)?;
        let mut cursor = order.cursor(&all[10]);
        order.step(&mut cursor, &all[10])?;
        assert!(
            order.step(&mut cursor, &all[12]).is_err(),
            "skipped all[11]"
        );
        let mut cursor = order.cursor(&all[95]);
        for k in &all[95..99] {
            order.step(&mut cursor, k)?;
        }
        assert!(
            order.end(&cursor, 4, 10).is_err(),
            "short before the last key"
        );
        order.step(&mut cursor, &all[99])?;
        order.end(&cursor, 5, 10)?;
        Ok(())
    }
}
