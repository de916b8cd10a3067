//! Custody: blocks a node carries toward requesters it may not know yet (store-carry-forward).
//!
//! A source publishes a block with a spray budget of L copies. While a carrier holds more than one copy it hands
//! half to every neighbour it meets (binary spray). Its last copy it keeps, until it meets a neighbour whose want
//! for the CID is at least twice as fresh as anything it has heard: that neighbour met the wanting node (or someone
//! who did) much more recently, so the copy moves to it (focus). A want's remaining lifetime is its freshness: the wanting node sends
//! the full lifetime, and each relay passes on what is left of it.
//! Custody ends early when a done notice arrives (`done.rs`): a requester already has the block.

use cid::Cid;

use super::router::Router;
use super::tables::Outbox;
use super::{PeerKey, Time, WantEntry};

/// A held block's spray budget and the freshest want for it this node has heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Custody {
    /// Copies this node may still hand out, its own included.
    pub(super) copies: u32,
    /// The latest expiry of any want for the CID heard here (0: none heard).
    pub(super) interest_until: Time,
    /// Order in which this node took custody (higher: more recent), so the newest copies are offered first.
    pub(super) since: u64,
    /// Replicas (copies without custody) this node may still hand to neighbours with spare room.
    pub(super) replicas: u32,
}

impl<P: PeerKey> Router<P> {
    /// A neighbour wants a block we hold: a plain HAVE, or, when we carry its last copy and the neighbour is nearer
    /// the requester than anybody we have heard of, an offer of that copy.
    pub(super) fn answer_want_for_held(&mut self, now: Time, from: P, entry: &WantEntry, outbox: &mut Outbox<P>) {
        let full = Time::from(self.cfg.want_ttl_ms);
        let margin = Time::from(self.cfg.focus_margin_ms);
        let expires = now + Time::from(entry.ttl_ms).min(full);
        let Some(custody) = self.custody.get_mut(&entry.cid) else {
            outbox.have(from, entry.cid, 0);
            return;
        };
        // How long ago the wanting node was (transitively) met: by us, and by the neighbour.
        let age = |expiry: Time| (now + full).saturating_sub(expiry);
        let ours = if custody.interest_until == 0 { Time::MAX } else { age(custody.interest_until) };
        let theirs = age(expires);
        // At least twice as fresh, and by a margin: each hand-over halves the age, so a copy moves a few times
        // toward the requester instead of wandering between nodes with similar news.
        if custody.copies == 1 && theirs.saturating_add(margin) < ours && theirs.saturating_mul(2) <= ours {
            outbox.offer(from, entry.cid, 1);
            self.offers.insert((from, entry.cid), 1);
            self.stats.offers_sent += 1;
        } else {
            outbox.have(from, entry.cid, 0);
        }
        custody.interest_until = custody.interest_until.max(expires);
    }

    /// We sent `cid` to `to`: the copies offered to it (or one, for a plain request) leave our budget, and custody
    /// ends with the last one. The block stays held, first in line for eviction.
    pub(super) fn copies_given(&mut self, to: P, cid: Cid) {
        let given = self.offers.remove(&(to, cid)).unwrap_or(1);
        let Some(custody) = self.custody.get_mut(&cid) else { return };
        if given == 0 {
            custody.replicas = custody.replicas.saturating_sub(1);
            return;
        }
        custody.copies = custody.copies.saturating_sub(given);
        if custody.copies == 0 {
            self.custody.remove(&cid);
            self.stats.focus_handovers += u64::from(given == 1);
        }
    }
}
