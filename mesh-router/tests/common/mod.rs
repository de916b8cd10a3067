//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;

/// The deterministic test pattern shared with `tests/helia/gen-vectors.mjs`:
/// byte i = (i * 31 + 7) mod 251.
pub fn pattern_byte(i: u64) -> u8 {
    ((i * 31 + 7) % 251) as u8
}

/// The pattern's first `len` bytes, in memory.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    PatternReader::new(len as u64).read_exact(&mut out).unwrap();
    out
}

/// A `Read` of the pattern's first `len` bytes that never holds them all,
/// so GiB-sized vectors stream through the importer in constant memory.
pub struct PatternReader {
    period: [u8; 251],
    pos: u64,
    len: u64,
}

impl PatternReader {
    /// A reader over `len` pattern bytes.
    pub fn new(len: u64) -> Self {
        let mut period = [0u8; 251];
        for (i, b) in period.iter_mut().enumerate() {
            *b = pattern_byte(i as u64);
        }
        Self { period, pos: 0, len }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.len - self.pos) as usize);
        let mut done = 0;
        while done < want {
            // The pattern has period 251: copy whole runs of it.
            let phase = ((self.pos + done as u64) % 251) as usize;
            let n = (251 - phase).min(want - done);
            buf[done..done + n].copy_from_slice(&self.period[phase..phase + n]);
            done += n;
        }
        self.pos += want as u64;
        Ok(want)
    }
}
