//! Want gossip: the router's sans-IO core (`/pollen/want/1.0.0`, specified in `docs/want-gossip.md`).
//!
//! A node that wants a CID floods a WANT outward with a hop budget. A node holding the block answers HAVE(0); a
//! relay that learns of a provider answers its requesters with a proxy HAVE(hops + 1). The requester then asks
//! exactly one provider at a time (REQUEST), each relay forwards the request one hop toward its own best provider,
//! and the block comes back hop by hop, cached at each relay (store-carry-forward). Two requesters of one CID behind
//! one relay cause one fetch: the relay coalesces them. Nothing broadcasts blocks.
//!
//! Neighbours also exchange Bloom summaries of what they hold (`own`) and what their neighbours hold (`near`), so a
//! want is often answered without flooding at all.
//!
//! The core owns no socket, clock, RNG or block bytes: the caller feeds it events with the current time and
//! carries out its [`Action`]s (sending messages, reading blocks from the store).
//!
//! ```
//! use pollen_router::gossip::{Action, Router, RouterConfig};
//! use pollen_router::unixfs::{cid_v1_sha256, RAW_CODEC};
//!
//! let cid = cid_v1_sha256(RAW_CODEC, b"hello");
//! let mut holder = Router::<u32>::new(RouterConfig::default());
//! holder.add_held(cid);
//! let mut wanter = Router::<u32>::new(RouterConfig::default());
//! wanter.peer_connected(0, 1);
//! wanter.want(0, cid);
//! // The wanter floods a WANT to its neighbour 1 (after its summary).
//! assert!(std::iter::from_fn(|| wanter.poll_action()).any(|a| matches!(a, Action::Send { to: 1, .. })));
//! ```

pub mod bloom;
mod custody;
mod done;
mod router;
mod tables;
pub mod wire;

use std::fmt::Debug;
use std::hash::Hash;

pub use bloom::Bloom;
use cid::Cid;
pub use router::Router;

/// Milliseconds on the caller's clock (any epoch; only differences matter).
pub type Time = u64;

/// What identifies a neighbour: a libp2p `PeerId`, a sim node index, …
pub trait PeerKey: Copy + Ord + Eq + Hash + Debug {}
impl<T: Copy + Ord + Eq + Hash + Debug> PeerKey for T {}

/// One wanted CID in a WANT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantEntry {
    /// The CID.
    pub cid: Cid,
    /// Random identifier of this want's flood, for loop suppression.
    pub id: u64,
    /// How many more times the want may be forwarded.
    pub hops_left: u8,
    /// Milliseconds until the want expires.
    pub ttl_ms: u32,
}

/// One entry of a HAVE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaveEntry {
    /// The CID.
    pub cid: Cid,
    /// 0: the sender holds it; n: the sender reaches a holder in n more hops.
    pub hops: u8,
    /// Non-zero: an offer to carry a copy, with this many copies of the spray budget handed over.
    pub copies: u32,
}

/// One block asked for in a REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEntry {
    /// The CID.
    pub cid: Cid,
    /// The distance the receiver advertised for the block (0: it holds it). The receiver serves only through a
    /// provider strictly closer than that and refuses otherwise, so a chain of REQUESTs shrinks at every hop and can
    /// never close a loop. `None` (Bitswap peers, senders that predate the field): no limit.
    pub within: Option<u8>,
}

/// The control messages of `/pollen/want/1.0.0` (blocks travel separately, see [`wire::WireMessage`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// What the sender holds (`own`) and what its neighbours hold (`near`).
    Summary {
        /// CIDs the sender holds.
        own: Bloom,
        /// CIDs the sender's neighbours hold.
        near: Bloom,
    },
    /// CIDs the sender wants, for itself or for others.
    Want(Vec<WantEntry>),
    /// The sender no longer wants these.
    Cancel(Vec<Cid>),
    /// The sender can provide these.
    Have(Vec<HaveEntry>),
    /// The sender cannot provide these (after a REQUEST or a WANT it cannot serve).
    DontHave(Vec<Cid>),
    /// Send me these blocks.
    Request(Vec<RequestEntry>),
}

/// Why the router wants a neighbour disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// It sent a block whose bytes do not hash to its CID.
    BadBlock,
}

/// What the router asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<P> {
    /// Send a control message.
    Send {
        /// Neighbour.
        to: P,
        /// Message.
        msg: Control,
    },
    /// Read the block from the store and send it.
    SendBlock {
        /// Neighbour.
        to: P,
        /// The block.
        cid: Cid,
    },
    /// A local want is satisfied: the block is in the store.
    Delivered {
        /// The block.
        cid: Cid,
    },
    /// Drop this neighbour.
    Disconnect {
        /// Neighbour.
        peer: P,
        /// Why.
        reason: Penalty,
    },
}

/// Tunables. Every table is bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Hop budget of a new want.
    pub want_hops: u8,
    /// Lifetime of a want, ms. Relays keep a want's interest for the lifetime it arrived with, after its requester
    /// left, and pass on what remains of it: a fresher want marks a shorter way to the node that wants the CID.
    pub want_ttl_ms: u32,
    /// How long a REQUEST may stay unanswered before the next provider is tried, ms. Generous: a 1 MiB block takes
    /// about 7 s over one BLE hop at 2M PHY.
    pub request_timeout_ms: u64,
    /// REQUESTs outstanding to one neighbour at a time; more would queue behind each other on a slow link and time
    /// out, and a timed-out request that still arrives is a duplicate.
    pub max_requests_per_neighbor: usize,
    /// A local want with no provider is flooded again this often, ms.
    pub rewant_interval_ms: u64,
    /// Most CIDs with want state (relayed plus local).
    pub max_wants: usize,
    /// Most relayed wants one neighbour may hold in this node's table.
    pub max_wants_per_neighbor: usize,
    /// Want entries a neighbour may send in a burst.
    pub want_burst: u32,
    /// Want entries per second a neighbour may sustain.
    pub want_rate_per_s: u32,
    /// Bloom summary size, bytes.
    pub summary_bytes: usize,
    /// Bloom hash functions.
    pub summary_hashes: u8,
    /// Summaries are re-sent at most this often when they changed, ms.
    pub summary_interval_ms: u64,
    /// Loop-suppression memory, want ids.
    pub seen_ids: usize,
    /// Seed for want ids (random per node; fixed in simulations).
    pub id_seed: u64,
    /// Most blocks this node fetches to carry for unknown requesters at once (0: never carries).
    pub max_carries: usize,
    /// Most spray offers made to one neighbour when it connects.
    pub offers_per_encounter: usize,
    /// A carrier down to its last copy hands it to a neighbour whose want for the CID is at least twice as fresh as
    /// any want the carrier has heard, and fresher by at least this much, ms.
    pub focus_margin_ms: u32,
    /// Relays other nodes' wants and carries copies for them; off, the node only answers for what it holds (the
    /// energy-budget policy turns this off when the battery share is too small).
    pub relay: bool,
    /// How long a node passes on a done notice (a requester received the CID) after hearing it, ms; 0: no notices
    /// are sent, and those heard are ignored.
    pub done_ttl_ms: u32,
    /// Hop budget of a done notice.
    pub done_hops: u8,
    /// Most done notices kept at once.
    pub max_done: usize,
    /// Replicas (copies without custody, evicted first) a custodian offers of each block in its custody, one per
    /// neighbour that connects (a plain HAVE); a neighbour fetches them only into the spare room its store reports
    /// ([`Router::set_spare_room`]). 0: none.
    pub replicas_per_custody: u32,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            want_hops: 6,
            want_ttl_ms: 120_000,
            request_timeout_ms: 60_000,
            max_requests_per_neighbor: 2,
            rewant_interval_ms: 20_000,
            max_wants: 16_384,
            max_wants_per_neighbor: 2_048,
            want_burst: 1_024,
            want_rate_per_s: 256,
            summary_bytes: 2_048,
            summary_hashes: 4,
            summary_interval_ms: 30_000,
            seen_ids: 16_384,
            id_seed: 0x5eed,
            max_carries: 256,
            offers_per_encounter: 256,
            focus_margin_ms: 60_000,
            relay: true,
            done_ttl_ms: 0,
            done_hops: 16,
            max_done: 4_096,
            replicas_per_custody: 0,
        }
    }
}

/// Counters, for tests, benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Want entries received.
    pub wants_in: u64,
    /// Want entries dropped by a neighbour's rate limit.
    pub wants_rate_limited: u64,
    /// Want entries dropped because a table was full.
    pub wants_table_full: u64,
    /// Wants forwarded (entries × neighbours).
    pub wants_forwarded: u64,
    /// REQUESTs sent.
    pub requests_sent: u64,
    /// Requests that timed out.
    pub request_timeouts: u64,
    /// Blocks sent from this node's store.
    pub blocks_sent: u64,
    /// Blocks that arrived.
    pub blocks_in: u64,
    /// Spray copies offered to neighbours.
    pub offers_sent: u64,
    /// Spray copies fetched to carry.
    pub carries: u64,
    /// Last copies handed to a neighbour nearer the requester (focus).
    pub focus_handovers: u64,
}
