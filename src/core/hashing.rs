//! The string hashes of Keras's `Hashing` layer, written from their published definitions:
//! `FarmHash`'s `Fingerprint64` (the `farmhashna` 64-bit hash, what TensorFlow's
//! `to_hash_bucket_fast` uses) and SipHash-2-4 with a 128-bit key (`to_hash_bucket_strong`).
//! A value's bin is its hash modulo the number of bins.

use rayon::prelude::*;

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

/// The little-endian u64 at `s[at..at + 8]`.
fn fetch64(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"))
}

/// The little-endian u32 at `s[at..at + 4]`, widened.
fn fetch32(s: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        s[at..at + 4].try_into().expect("four bytes"),
    ))
}

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

/// `FarmHash`'s 128-to-64-bit mix of `u` and `v` with multiplier `mul`.
fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let a = shift_mix((u ^ v).wrapping_mul(mul));
    let b = shift_mix((v ^ a).wrapping_mul(mul));
    b.wrapping_mul(mul)
}

fn hash_len0to16(s: &[u8]) -> u64 {
    let len = s.len();
    let len64 = len as u64;
    if len >= 8 {
        let mul = K2.wrapping_add(len64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len64 * 2);
        return hash_len16(len64 + (fetch32(s, 0) << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        // 32-bit arithmetic, as the definition's uint32 temporaries.
        let y = u32::from(s[0]) + (u32::from(s[len >> 1]) << 8);
        let z = len as u32 + (u32::from(s[len - 1]) << 2);
        return shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K0))
            .wrapping_mul(K2);
    }
    K2
}

fn hash_len17to32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

fn hash_len33to64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len16(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// `FarmHash`'s weak 32-byte hash of `s[at..at + 32]` seeded with `a` and `b`.
fn weak_hash_len32(s: &[u8], at: usize, a: u64, b: u64) -> (u64, u64) {
    let (w, x, y, z) = (
        fetch64(s, at),
        fetch64(s, at + 8),
        fetch64(s, at + 16),
        fetch64(s, at + 24),
    );
    let a = a.wrapping_add(w);
    let b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    let a = a.wrapping_add(x).wrapping_add(y);
    let b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// `FarmHash`'s `Fingerprint64` of `s` (stable across platforms and releases).
#[must_use]
pub fn fingerprint64(s: &[u8]) -> u64 {
    let len = s.len();
    if len <= 16 {
        return hash_len0to16(s);
    }
    if len <= 32 {
        return hash_len17to32(s);
    }
    if len <= 64 {
        return hash_len33to64(s);
    }
    const SEED: u64 = 81;
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let (mut v, mut w) = ((0u64, 0u64), (0u64, 0u64));
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));
    // Whole 64-byte blocks; the last (possibly overlapping) 64 bytes are mixed after the loop.
    let end = (len - 1) / 64 * 64;
    let last64 = end + ((len - 1) & 63) - 63;
    let mut at = 0;
    while at != end {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, at + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, at + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, at + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32(
            s,
            at + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, at + 16)),
        );
        std::mem::swap(&mut z, &mut x);
        at += 64;
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    let at = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(fetch64(s, at + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(fetch64(s, at + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(fetch64(s, at + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32(s, at, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32(
        s,
        at + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, at + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len16(
        hash_len16(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

/// One SipHash-2-4 round over the state `v`.
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of `s` under the 128-bit key `(key[0], key[1])` (the key's low and high words).
#[must_use]
pub fn siphash24(key: [u64; 2], s: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut compress = |m: u64| {
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    };
    let mut blocks = s.chunks_exact(8);
    for block in &mut blocks {
        compress(u64::from_le_bytes(block.try_into().expect("eight bytes")));
    }
    // The tail, with the length's low byte on top.
    let mut last = [0u8; 8];
    let tail = blocks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = s.len() as u8;
    compress(u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The bins of the strings `data[ends[i - 1]..ends[i]]` (`ends[-1]` = 0): `FarmHash`
/// `Fingerprint64` modulo `num_bins`, or SipHash-2-4 under `key` modulo `num_bins` when a key is
/// given. `ends` must be non-decreasing and at most `data.len()`; `num_bins` positive.
///
/// # Panics
/// If `ends` is not within `data` or `num_bins` is zero (the bindings check both first).
#[must_use]
pub fn hash_to_bins(data: &[u8], ends: &[usize], num_bins: u64, key: Option<[u64; 2]>) -> Vec<u64> {
    assert!(num_bins > 0, "num_bins must be positive");
    (0..ends.len())
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            let value = &data[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
            let hash = match key {
                Some(key) => siphash24(key, value),
                None => fingerprint64(value),
            };
            hash % num_bins
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text[..n]` of the goldens: lowercase letters `a + 7i mod 26`.
    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'a' + (i * 7 % 26) as u8).collect()
    }

    #[test]
    fn fingerprint64_matches_farmhash() {
        // Every length branch and loop count. Made with the pyfarmhash package (Google's C++):
        //   text = "".join(chr(97 + i * 7 % 26) for i in range(300))
        //   hex(farmhash.fingerprint64(text[:n]))
        let goldens: [(usize, u64); 19] = [
            (0, 0x9ae1_6a3b_2f90_404f),
            (1, 0xb345_4265_b6df_75e3),
            (3, 0x2d5b_0cbc_c48f_dc6b),
            (4, 0x7b80_3bc7_5cee_3292),
            (7, 0xed26_8688_6900_3b0a),
            (8, 0x93b5_2af6_d9b9_2820),
            (9, 0xef00_2a72_6b27_544e),
            (16, 0xf496_a369_6582_095e),
            (17, 0x1f0c_6481_4df2_3a1a),
            (31, 0x08b2_aebb_06a4_ade5),
            (32, 0x9636_decc_e0f1_19bc),
            (33, 0x6fa5_de3a_3dd8_1cac),
            (64, 0xe01e_9a6d_5635_769e),
            (65, 0x266a_2649_1da9_530d),
            (127, 0x44d8_6f1d_c468_d399),
            (128, 0x9174_72f7_f980_118d),
            (129, 0x0eb7_d4a2_cddb_5078),
            (200, 0xd137_238f_e25c_be34),
            (300, 0x6d8c_60e9_557b_dd86),
        ];
        for (n, want) in goldens {
            assert_eq!(fingerprint64(&text(n)), want, "length {n}");
        }
    }

    #[test]
    fn siphash_matches_siphashc_with_a_salt() {
        // Made with the siphashc package: siphashc.siphash(struct.pack("<QQ", 133, 137), text[:n]).
        let goldens: [(usize, u64); 6] = [
            (0, 0x4464_e36d_4983_5ad4),
            (7, 0x71aa_2512_d54f_7135),
            (8, 0x0595_f3cf_f22c_d44e),
            (15, 0xcfb4_2524_7c7d_7c69),
            (16, 0x9587_8272_edde_6915),
            (100, 0xbe73_80db_49fb_233b),
        ];
        for (n, want) in goldens {
            assert_eq!(siphash24([133, 137], &text(n)), want, "length {n}");
        }
    }

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // The SipHash paper's test vectors: key bytes 00..0f, messages 00, 00 01, ... (first four).
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        let message: Vec<u8> = (0..16).collect();
        let want = [
            0x726f_db47_dd0e_0e31,
            0x74f8_39c5_93dc_67fd,
            0x0d6c_8009_d9a9_4f5a,
            0x8567_6696_d7fb_7e2d,
        ];
        for (len, want) in want.into_iter().enumerate() {
            assert_eq!(siphash24(key, &message[..len]), want, "length {len}");
        }
    }

    #[test]
    fn bins_split_the_buffer_at_the_ends() {
        let bins = hash_to_bins(b"abcd", &[1, 1, 4], u64::MAX, None);
        assert_eq!(
            bins,
            [
                fingerprint64(b"a"),
                fingerprint64(b""),
                fingerprint64(b"bcd")
            ]
        );
        let salted = hash_to_bins(b"ab", &[2], 7, Some([1, 2]));
        assert_eq!(salted, [siphash24([1, 2], b"ab") % 7]);
    }
}
