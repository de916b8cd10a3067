//! Test helper for `tests/crash.rs`: writes random blocks to a store until it is killed.
//!
//! Usage: `store-crash-writer <db-path> <seed> <cache-quota-bytes> <quick-repair 0|1>`
//!
//! Protocol on stdout, one line per event, flushed before the next operation:
//! - `P <cid>`: a put (or pin) as pinned has returned; the block must survive a crash, pinned.
//! - `C <cid>`: a put as cache has returned; the block must survive unless evicted.
//! - `u <cid>` / `d <cid>`: printed *before* an unpin / delete, so the parent stops requiring the
//!   block from that point on (the operation may or may not have committed when the kill lands).
//!
//! It is a plain binary rather than an example because integration tests can only locate bins
//! (through `CARGO_BIN_EXE_*`). It is not part of the library API.

use std::io::{self, Write};
use std::process::ExitCode;

use pollen_store::{cid_of, BlockStore, Cid, Class, Codec, StoreConfig, StoreError};

/// splitmix64: enough randomness for a test driver without pulling `rand` into the library's
/// dependency list (bins share it).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Bounded so the driver itself cannot grow without limit if nobody kills it.
const MAX_OPS: u64 = 100_000;
const RECENT: usize = 64;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument <{name}>"))?
        .parse()
        .map_err(|_| format!("bad argument <{name}>"))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path: String = arg(&args, 1, "db-path")?;
    let mut rng = Rng(arg(&args, 2, "seed")?);
    let cache_quota_bytes: u64 = arg(&args, 3, "cache-quota-bytes")?;
    let quick_repair: u8 = arg(&args, 4, "quick-repair")?;

    let store = BlockStore::open(
        &path,
        StoreConfig {
            cache_quota_bytes,
            quick_repair: quick_repair != 0,
            // Small, so recency flushes from `get` also happen (and get killed) mid-run.
            access_batch: 4,
            ..StoreConfig::default()
        },
    )?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut recent: Vec<Cid> = Vec::with_capacity(RECENT);

    for _ in 0..MAX_OPS {
        let roll = rng.below(100);
        if roll < 80 || recent.is_empty() {
            // Mostly small blocks; now and then a larger one so multi-page values get killed too.
            let size = if rng.below(10) == 0 { rng.below(64 * 1024) } else { rng.below(4096) } as usize;
            let mut bytes = vec![0u8; size];
            for chunk in bytes.chunks_mut(8) {
                let word = rng.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            let codec = if rng.below(2) == 0 { Codec::Raw } else { Codec::DagPb };
            let cid = cid_of(codec, &bytes);
            let (class, tag) = if roll < 45 { (Class::Pinned, 'P') } else { (Class::Cache, 'C') };
            match store.put(&cid, &bytes, class) {
                Ok(_) => {}
                // Cache-only runs with a tiny quota may refuse the odd large block.
                Err(StoreError::QuotaExceeded { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            writeln!(out, "{tag} {cid}")?;
            out.flush()?;
            if recent.len() == RECENT {
                recent.swap_remove(rng.below(RECENT as u64) as usize);
            }
            recent.push(cid);
            continue;
        }
        let cid = recent[rng.below(recent.len() as u64) as usize];
        match roll {
            80..=87 => {
                store.get(&cid)?;
            }
            88..=91 => match store.pin(&cid) {
                Ok(_) => {
                    writeln!(out, "P {cid}")?;
                    out.flush()?;
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            },
            92..=95 => {
                writeln!(out, "u {cid}")?;
                out.flush()?;
                store.unpin(&cid)?;
            }
            _ => {
                writeln!(out, "d {cid}")?;
                out.flush()?;
                store.delete(&cid)?;
            }
        }
    }
    Ok(())
}
