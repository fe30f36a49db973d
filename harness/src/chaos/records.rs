//! The record formats every chaos runner writes and reads back (the in-process rig, the kill
//! -9 loop and the soak): one definition each, so a runner cannot drift from another.
//!
//! * Keys: a one-byte table prefix (`k` for versioned records, `b` for bank accounts) and
//!   the record's index, big-endian, so a key-order scan is an index-order scan.
//! * Bank values: the balance and a checksum that binds it to its account (a value copied
//!   to the wrong account, or torn, fails it), padded to the runner's length.

use crate::faults::rng::hash_bytes;

/// Bytes of a record key.
pub const RECORD_KEY_BYTES: usize = 9;
/// Every account's balance at the start: the bank's total is this times the accounts.
pub const BALANCE_INITIAL: i64 = 1_000;
/// Bytes of a bank value before padding: balance and checksum.
pub const BANK_VALUE_BYTES_MIN: usize = 16;

/// The key of record `index` in table `prefix`.
#[must_use]
pub fn record_key(prefix: u8, index: u64) -> [u8; RECORD_KEY_BYTES] {
    let mut k = [prefix; RECORD_KEY_BYTES];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The prefix and index of a record key; None for any other shape.
#[must_use]
pub fn record_index(key: &[u8]) -> Option<(u8, u64)> {
    if key.len() != RECORD_KEY_BYTES {
        return None;
    }
    let (&prefix, rest) = key.split_first()?;
    Some((prefix, u64::from_be_bytes(rest.try_into().ok()?)))
}

/// Account `account`'s value holding `balance`, `len` bytes (at least
/// [`BANK_VALUE_BYTES_MIN`]; the rest is zero padding that spreads accounts over pages).
#[must_use]
pub fn bank_value(account: u64, balance: i64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.max(BANK_VALUE_BYTES_MIN)];
    v[..8].copy_from_slice(&balance.to_le_bytes());
    v[8..16].copy_from_slice(&bank_sum(account, balance).to_le_bytes());
    v
}

fn bank_sum(account: u64, balance: i64) -> u64 {
    hash_bytes(&[account.to_le_bytes(), balance.to_le_bytes()].concat())
}

/// The balance in account `account`'s value of `len` bytes; None when the value is torn,
/// of another length, or belongs to another account.
#[must_use]
pub fn bank_balance(account: u64, bytes: &[u8], len: usize) -> Option<i64> {
    let balance = i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let sum = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    let ok = bytes.len() == len.max(BANK_VALUE_BYTES_MIN) && sum == bank_sum(account, balance);
    ok.then_some(balance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bank_values_round_trip_and_refuse_others() {
        let k = record_key(b'k', 0x0102_0304_0506_0708);
        assert_eq!(record_index(&k), Some((b'k', 0x0102_0304_0506_0708)));
        assert_eq!(record_index(&k[..8]), None);
        let v = bank_value(7, -42, 64);
        assert_eq!(v.len(), 64);
        assert_eq!(bank_balance(7, &v, 64), Some(-42));
        assert_eq!(bank_balance(8, &v, 64), None, "another account's value");
        assert_eq!(bank_balance(7, &v[..32], 64), None, "a torn value");
        assert_eq!(bank_balance(7, &bank_value(7, 5, 0), 16), Some(5));
    }
}
