//! Randomness for report ids, sampling and jitter: a per-thread splitmix64
//! stream, seeded from the OS-randomised hasher keys.
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::SystemTime;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A per-thread splitmix64 stream, seeded from the OS-randomised hasher keys.
pub(crate) fn random_u128() -> u128 {
    fn next() -> u64 {
        RNG.try_with(|state| {
            let mut s = state.get();
            if s == 0 {
                let mut h = RandomState::new().build_hasher();
                h.write_u128(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0),
                );
                s = h.finish() | 1;
            }
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(s);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .unwrap_or_else(|_| {
            let mut h = RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        })
    }
    (u128::from(next()) << 64) | u128::from(next())
}
