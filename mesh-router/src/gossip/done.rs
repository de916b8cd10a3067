//! Done notices: a requester that received a block tells the mesh, so carriers stop spending buffer on it.
//!
//! A notice is a WANT entry with `ttl_ms = 0` (`docs/want-gossip.md` §6): "the want for this CID is over, it was
//! satisfied". Implementations that predate notices ignore a WANT with no lifetime left, so the extension needs no
//! new message or version. A notice carries a fresh want id (loop suppression, as for wants) and a hop budget; each
//! node keeps it for `done_ttl_ms` from when it heard it and passes it on to every neighbour it meets meanwhile,
//! within the hop budget. Hearing one ends the node's custody of the block (it stays held, first in line for
//! eviction, and still answers wants) and makes it decline offers of the block.

use std::collections::BTreeSet;

use cid::Cid;

use super::router::Router;
use super::tables::Outbox;
use super::{PeerKey, Time, WantEntry};

/// A done notice this node passes on.
#[derive(Debug, Clone)]
pub(super) struct Notice<P> {
    /// The notice's flood id.
    id: u64,
    /// Hop budget to send with it (0: not passed on).
    hops_left: u8,
    /// When this node stops passing it on.
    until: Time,
    /// Neighbours that have it (told by us, or told us).
    told: BTreeSet<P>,
}

impl<P: PeerKey> Router<P> {
    /// Whether a requester of `cid` is known to have received it (a done notice was heard or sent), so a store may
    /// drop the block before any other.
    pub fn is_done(&self, cid: &Cid) -> bool {
        self.done.contains_key(cid)
    }

    /// Our own want for `cid` was satisfied: tell the mesh.
    pub(super) fn announce_done(&mut self, now: Time, cid: Cid, outbox: &mut Outbox<P>) {
        if self.cfg.done_ttl_ms == 0 {
            return;
        }
        let id = self.new_id();
        self.note_done(now, cid, id, self.cfg.done_hops, None, outbox);
    }

    /// A WANT entry with no lifetime left: a neighbour's done notice.
    pub(super) fn on_done(&mut self, now: Time, from: P, entry: &WantEntry, outbox: &mut Outbox<P>) {
        if self.cfg.done_ttl_ms == 0 || !self.seen.insert(entry.id) {
            return;
        }
        let hops = if self.cfg.relay { entry.hops_left.saturating_sub(1) } else { 0 };
        self.note_done(now, entry.cid, entry.id, hops, Some(from), outbox);
    }

    fn note_done(&mut self, now: Time, cid: Cid, id: u64, hops_left: u8, from: Option<P>, outbox: &mut Outbox<P>) {
        self.prune_done(now);
        if self.done.contains_key(&cid) {
            return;
        }
        if self.done.len() >= self.cfg.max_done.max(1) {
            // Full: the notice that ends soonest makes room.
            let first = self.done.iter().min_by_key(|(_, n)| n.until).map(|(c, _)| *c);
            if let Some(c) = first {
                self.done.remove(&c);
            }
        }
        let until = now + Time::from(self.cfg.done_ttl_ms);
        self.done.insert(cid, Notice { id, hops_left, until, told: from.into_iter().collect() });
        // The copies have nobody left to reach: custody ends, pending offers and carries with it.
        self.custody.remove(&cid);
        self.offers.retain(|(_, c), _| *c != cid);
        if let Some(state) = self.wants.get_mut(&cid) {
            if state.carry.is_some() && !state.local {
                state.carry = None;
            }
        }
        self.collect(cid, outbox);
        let peers: Vec<P> = self.neighbors().copied().collect();
        for p in peers {
            self.tell_done(p, &cid, outbox);
        }
    }

    /// Sends `peer` the notice for `cid` unless it has it or the hop budget is spent.
    fn tell_done(&mut self, peer: P, cid: &Cid, outbox: &mut Outbox<P>) {
        let Some(n) = self.done.get_mut(cid) else { return };
        if n.hops_left > 0 && n.told.insert(peer) {
            outbox.want(peer, WantEntry { cid: *cid, id: n.id, hops_left: n.hops_left, ttl_ms: 0 });
        }
    }

    /// A new neighbour hears every live notice.
    pub(super) fn tell_all_done(&mut self, now: Time, peer: P, outbox: &mut Outbox<P>) {
        self.prune_done(now);
        let cids: Vec<Cid> = self.done.keys().copied().collect();
        for cid in cids {
            self.tell_done(peer, &cid, outbox);
        }
    }

    /// Forgets a departed neighbour in the notices (it may be told again when it returns: cheap, and it may have
    /// restarted).
    pub(super) fn done_peer_gone(&mut self, peer: &P) {
        for n in self.done.values_mut() {
            n.told.remove(peer);
        }
    }

    fn prune_done(&mut self, now: Time) {
        self.done.retain(|_, n| n.until > now);
    }
}
