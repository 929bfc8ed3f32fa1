//! Which unlisted request header Chromium names when a preflight answer leaves several out.
//!
//! Chromium's message names one header ("Request header field X is not allowed by
//! Access-Control-Allow-Headers in preflight response."): the first, in the order the request's
//! headers reach the network service, that `Access-Control-Allow-Headers` does not list. That
//! order is neither the script's nor sorted. Blink keeps a request's headers in a hash table
//! (WTF's `HashMap` with case-folding keys) and hands them over in the table's slot order:
//!
//! - `fetch()` inserts the script's header names case-insensitively sorted and de-duplicated
//!   (its header list is a sorted multimap), a body's implicit `Content-Type` included;
//! - then Blink adds its own: `sec-ch-ua`, `sec-ch-ua-mobile` and `sec-ch-ua-platform` when the
//!   URL fetched is potentially trustworthy (https or a loopback host; the page's own origin,
//!   frame and cache mode play no part), then `User-Agent`. They are never named (forbidden
//!   names), but they take slots and so move the others;
//! - the key's hash is rapidhash (v1, fixed seed) over the lowercased name as UTF-16LE, its low
//!   24 bits (0 read as `0x800000`); the table starts at 8 slots, probes triangularly and doubles
//!   (reinserting in slot order) once half full.
//!
//! Pinned against Chromium 156 by `tests/chromium_header_order.rs` (364 fetches recorded from
//! windows, to loopback and to other hosts) and by the differential suite. The order is
//! deterministic (no random seed), but other Chromium versions, client hints a site opted into
//! with `Accept-CH` or turned off with a Permissions-Policy, fetches from workers (which add no
//! client hints) and headers that DevTools injects can change it.

/// The names of `headers` (as the script set them, repeats allowed) in Blink's header-map order
/// for a `fetch()` from a document, lowercased, with the names Blink adds itself
/// (`client_hints`: whether it adds the User-Agent client hints).
pub(crate) fn chromium_order<'a>(
    headers: impl Iterator<Item = &'a str>,
    client_hints: bool,
) -> Vec<String> {
    let mut names: Vec<String> = headers.map(str::to_ascii_lowercase).collect();
    names.sort();
    names.dedup();
    let blink: &[&str] = if client_hints {
        &[
            "sec-ch-ua",
            "sec-ch-ua-mobile",
            "sec-ch-ua-platform",
            "user-agent",
        ]
    } else {
        &["user-agent"]
    };
    let mut table = Table::default();
    for name in names.into_iter().chain(blink.iter().map(|&s| s.to_owned())) {
        table.insert(name);
    }
    table.slots.into_iter().flatten().collect()
}

/// WTF's open-addressing hash table, reduced to what decides the iteration order.
#[derive(Default)]
struct Table {
    slots: Vec<Option<String>>,
    count: usize,
}

impl Table {
    fn insert(&mut self, key: String) {
        if self.slots.is_empty() {
            self.slots = vec![None; 8];
        }
        if Self::place(&mut self.slots, key) {
            self.count += 1;
            if self.count * 2 >= self.slots.len() {
                let doubled = vec![None; self.slots.len() * 2];
                let old = std::mem::replace(&mut self.slots, doubled);
                for key in old.into_iter().flatten() {
                    Self::place(&mut self.slots, key);
                }
            }
        }
    }

    /// Puts `key` in its slot; false when an equal key is already there.
    fn place(slots: &mut [Option<String>], key: String) -> bool {
        let mask = slots.len() - 1;
        let mut i = wtf_hash(&key) as usize & mask;
        let mut probe = 0;
        while let Some(existing) = &slots[i] {
            if *existing == key {
                return false;
            }
            probe += 1;
            i = (i + probe) & mask;
        }
        slots[i] = Some(key);
        true
    }
}

/// WTF's 24-bit string hash of a lowercase ASCII name.
fn wtf_hash(name: &str) -> u32 {
    let h = (rapidhash_utf16(name.as_bytes()) & 0xFF_FFFF) as u32;
    if h == 0 {
        0x80_0000
    } else {
        h
    }
}

const SEED: u64 = 0xbdd8_9aa9_8270_4029;
const SECRET: [u64; 3] = [
    0x2d35_8dcc_aa6c_78a5,
    0x8bb8_4b93_962e_acc9,
    0x4b33_a62e_d433_d4a3,
];

fn mum(a: u64, b: u64) -> (u64, u64) {
    let r = u128::from(a) * u128::from(b);
    (r as u64, (r >> 64) as u64)
}

fn mix(a: u64, b: u64) -> u64 {
    let (lo, hi) = mum(a, b);
    lo ^ hi
}

/// rapidhash v1 over `latin1` read as UTF-16LE (each byte followed by a zero byte), as Blink's
/// case-folding reader feeds it; a one-character string is read as the character alone.
fn rapidhash_utf16(latin1: &[u8]) -> u64 {
    let bytes: Vec<u8> = latin1.iter().flat_map(|&b| [b, 0]).collect();
    let r64 = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let r32 = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let len = bytes.len();
    let mut seed = SEED;
    seed ^= mix(seed ^ SECRET[0], SECRET[1]) ^ len as u64;
    let (mut a, mut b);
    if len <= 16 {
        if len >= 4 {
            let last = len - 4;
            a = (r32(0) << 32) | r32(last);
            let delta = (len & 24) >> (len >> 3);
            b = (r32(delta) << 32) | r32(last - delta);
        } else if len > 0 {
            a = latin1.first().map_or(0, |&c| u64::from(c));
            b = 0;
        } else {
            a = 0;
            b = 0;
        }
    } else {
        let mut p = 0;
        let mut i = len;
        if i > 48 {
            let (mut see1, mut see2) = (seed, seed);
            loop {
                seed = mix(r64(p) ^ SECRET[0], r64(p + 8) ^ seed);
                see1 = mix(r64(p + 16) ^ SECRET[1], r64(p + 24) ^ see1);
                see2 = mix(r64(p + 32) ^ SECRET[2], r64(p + 40) ^ see2);
                p += 48;
                i -= 48;
                if i < 48 {
                    break;
                }
            }
            seed ^= see1 ^ see2;
        }
        if i > 16 {
            seed = mix(r64(p) ^ SECRET[2], r64(p + 8) ^ seed ^ SECRET[1]);
            if i > 32 {
                seed = mix(r64(p + 16) ^ SECRET[2], r64(p + 24) ^ seed);
            }
        }
        a = r64(p + i - 16);
        b = r64(p + i - 8);
    }
    a ^= SECRET[1];
    b ^= seed;
    let (a, b) = mum(a, b);
    mix(a ^ SECRET[0] ^ len as u64, b ^ SECRET[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blink's hashes of these names, worked out from Chromium's sources and confirmed by the
    /// orders Chromium 156 sent them in (tests/chromium_header_order.rs).
    #[test]
    fn hashes_of_known_names() {
        for (name, hash) in [
            ("x-a", 0x3c604d),
            ("x-b", 0x43065f),
            ("x-foo", 0xfbd9ed),
            ("x-bar", 0x6712a9),
            ("authorization", 0xb67284),
            ("user-agent", 0xc21178),
            ("sec-ch-ua", 0x33f009),
            ("sec-ch-ua-mobile", 0x9b488d),
            ("sec-ch-ua-platform", 0xffbec3),
            ("a", 0x64635e),
        ] {
            assert_eq!(wtf_hash(name), hash, "{name}");
        }
    }

    #[test]
    fn long_names_hash_without_panicking() {
        for len in 0..200 {
            let name = "x".repeat(len);
            let _ = wtf_hash(&name);
        }
    }

    #[test]
    fn repeated_and_differently_cased_names_take_one_slot() {
        let order = chromium_order(["X-A", "x-a", "X-B"].into_iter(), false);
        assert_eq!(order.iter().filter(|n| *n == "x-a").count(), 1);
        assert_eq!(order.len(), 3);
    }
}
