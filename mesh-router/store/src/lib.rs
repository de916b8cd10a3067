//! Persistent, crash-safe, quota-bounded block store for the Pollen mesh router.
//!
//! This crate is the future `store` module of `pollen-router`. It keeps content-addressed blocks
//! (CIDv1, sha2-256, raw or dag-pb) in two classes:
//!
//! - [`Class::Pinned`]: the user's own data. Never evicted; optionally capped by a quota whose
//!   breach is an error ([`StoreError::QuotaExceeded`]).
//! - [`Class::Cache`]: blocks carried for other people (store-carry-forward). Capped by a byte
//!   quota; the least recently used cache blocks are evicted to make room.
//!
//! Every block is verified against its CID before it is stored ([`StoreError::HashMismatch`]), and
//! by default again when it is read, so a bad disk cannot make the router serve bad content.
//!
//! # Why redb and not SQLite (rusqlite)
//!
//! - **Pure Rust.** `redb` needs no C toolchain, so the same crate cross-compiles to Android (NDK)
//!   and iOS targets with nothing but `cargo`; `rusqlite` with the `bundled` feature compiles
//!   SQLite's C sources per target, and without it depends on each platform's system SQLite.
//! - **ACID with copy-on-write B-trees.** A write transaction builds new pages beside the old ones
//!   and flips a checksummed commit slot, so a crash leaves either the old or the new state, never
//!   a torn mix, and there is no separate WAL file to lose or replay.
//! - **fsync'd commits.** With [`redb::Durability::Immediate`] (the only level this store uses),
//!   `commit` returns only after `fsync`. [`BlockStore::put`] returns only after that commit, so an
//!   acknowledged block survives `kill -9` and power loss (to the extent the device honours
//!   `fsync`). The crash test in `tests/crash.rs` checks the `kill -9` half of that claim.
//! - **Typed tables, no SQL.** The schema is five small tables declared in Rust, so there is no
//!   query string to get wrong and no statement cache to bound.
//!
//! # Durability and recovery
//!
//! Mobile OSes kill background apps without warning, which looks exactly like `kill -9`. redb's
//! default recovery after such a kill walks the whole file; [`StoreConfig::quick_repair`] (on by
//! default) instead saves allocator state in every commit, so reopening after a kill is quick at
//! the price of a second `fsync` per commit.
//!
//! # Bounded memory
//!
//! The store never loads more than one block at a time. Iteration ([`BlockStore::iter_cids`]) and
//! the consistency check ([`BlockStore::verify`]) stream from a read snapshot. redb's page cache
//! is capped by [`StoreConfig::db_cache_bytes`] (redb's own default is 1 GiB, far too much for a
//! phone). Pending recency updates are capped by [`StoreConfig::access_batch`].
//!
//! # Example
//!
//! ```
//! use pollen_store::{BlockStore, Class, StoreConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = BlockStore::open(dir.path().join("blocks.redb"), StoreConfig::default())?;
//! let (cid, _outcome) = store.put_raw(b"hello mesh", Class::Pinned)?;
//! assert_eq!(store.get(&cid)?.as_deref(), Some(&b"hello mesh"[..]));
//! # Ok(())
//! # }
//! ```

mod content;
mod error;
mod iter;
mod schema;
mod store;
mod types;
mod verify;

pub use cid::Cid;
pub use content::{check_cid, cid_of, verify_block, Codec, MAX_BLOCK_SIZE, SHA2_256};
pub use error::{Result, StoreError};
pub use iter::CidIter;
pub use store::BlockStore;
pub use types::{Class, Evicted, PutOutcome, PutStatus, StoreConfig, StoreStats, UnpinOutcome};
pub use verify::{VerifyReport, MAX_REPORTED_PROBLEMS};

#[cfg(test)]
mod tests;

// Compiles and runs the README's example as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
