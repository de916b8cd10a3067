//! The want-gossip state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cid::Cid;

use super::bloom::{Bloom, BloomKey};
use super::custody::Custody;
use super::done::Notice;
use super::tables::{Outbox, SeenIds, TokenBucket, WantState};
use super::{Action, Control, PeerKey, Penalty, RouterConfig, RouterStats, Time, WantEntry};

#[derive(Debug)]
struct Neighbor {
    own: Bloom,
    near: Bloom,
    bucket: TokenBucket,
    /// Relayed wants of this neighbour in our table (bounded by `max_wants_per_neighbor`).
    wants: usize,
}

/// The want-gossip router of one node. See the [module documentation](super).
#[derive(Debug)]
pub struct Router<P: PeerKey> {
    pub(super) cfg: RouterConfig,
    neighbors: BTreeMap<P, Neighbor>,
    held: BTreeSet<Cid>,
    own: Bloom,
    own_dirty: bool,
    summary_dirty: bool,
    next_summary: Time,
    pub(super) wants: BTreeMap<Cid, WantState<P>>,
    /// Held blocks this node carries toward requesters it may not know yet, with their spray budget.
    pub(super) custody: BTreeMap<Cid, Custody>,
    /// Offers made and not yet taken: (neighbour, CID) → copies offered.
    pub(super) offers: BTreeMap<(P, Cid), u32>,
    /// Done notices this node passes on: CIDs a requester is known to have received.
    pub(super) done: BTreeMap<Cid, Notice<P>>,
    /// Custody taken so far (orders custody by recency).
    custody_seq: u64,
    /// REQUESTs outstanding per provider (at most `max_requests_per_neighbor`).
    in_flight: BTreeMap<P, usize>,
    /// CIDs whose providers are all busy: asked again when a request slot frees up.
    slot_waiters: BTreeSet<Cid>,
    pub(super) seen: SeenIds,
    id_counter: u64,
    /// Further copies the store can take in custody now (the driver says; unbounded until it does).
    carry_room: usize,
    /// Blocks the store can take without evicting anything useful (the driver says; 0 until it does).
    spare_room: usize,
    out: VecDeque<Action<P>>,
    pub(super) stats: RouterStats,
}

/// SplitMix64: spreads a counter into well-mixed want ids without an RNG in the core.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<P: PeerKey> Router<P> {
    /// A router with no neighbours and nothing held.
    pub fn new(cfg: RouterConfig) -> Self {
        let own = Bloom::new(cfg.summary_bytes, cfg.summary_hashes);
        let seen = SeenIds::new(cfg.seen_ids);
        Self {
            cfg,
            neighbors: BTreeMap::new(),
            held: BTreeSet::new(),
            own,
            own_dirty: false,
            summary_dirty: false,
            next_summary: 0,
            wants: BTreeMap::new(),
            custody: BTreeMap::new(),
            offers: BTreeMap::new(),
            done: BTreeMap::new(),
            custody_seq: 0,
            in_flight: BTreeMap::new(),
            slot_waiters: BTreeSet::new(),
            seen,
            id_counter: 0,
            carry_room: usize::MAX,
            spare_room: 0,
            out: VecDeque::new(),
            stats: RouterStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// Whether this node holds `cid`.
    pub fn holds(&self, cid: &Cid) -> bool {
        self.held.contains(cid)
    }

    /// CIDs with want state (local or relayed).
    pub fn wanted(&self) -> usize {
        self.wants.len()
    }

    /// Whether this node's application wants `cid` and does not have it yet.
    pub fn wants_locally(&self, cid: &Cid) -> bool {
        self.wants.get(cid).is_some_and(|w| w.local)
    }

    /// The connected neighbours.
    pub fn neighbors(&self) -> impl Iterator<Item = &P> {
        self.neighbors.keys()
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.out.pop_front()
    }

    fn next_custody_seq(&mut self) -> u64 {
        self.custody_seq += 1;
        self.custody_seq
    }

    pub(super) fn new_id(&mut self) -> u64 {
        self.id_counter += 1;
        let id = mix(self.cfg.id_seed ^ mix(self.id_counter));
        self.seen.insert(id);
        id
    }

    fn send(&mut self, to: P, msg: Control) {
        self.out.push_back(Action::Send { to, msg });
    }

    fn near_bloom(&self) -> Bloom {
        let mut near = Bloom::new(self.cfg.summary_bytes, self.cfg.summary_hashes);
        for n in self.neighbors.values() {
            near.union(&n.own);
        }
        near
    }

    fn summary(&mut self) -> Control {
        if self.own_dirty {
            let mut own = Bloom::new(self.cfg.summary_bytes, self.cfg.summary_hashes);
            for cid in &self.held {
                own.insert(cid);
            }
            self.own = own;
            self.own_dirty = false;
        }
        Control::Summary { own: self.own.clone(), near: self.near_bloom() }
    }

    // --- events from the driver ---

    /// A block is in the store: from a neighbour (`Some`, already checked against its CID) or put locally (`None`).
    pub fn block_arrived(&mut self, now: Time, from: Option<P>, cid: Cid) {
        self.stats.blocks_in += u64::from(from.is_some());
        self.add_held(cid);
        self.slot_waiters.remove(&cid);
        let Some(state) = self.wants.remove(&cid) else { return };
        if let Some(fetch) = state.fetch {
            self.free_slot(fetch.provider);
        }
        let mut outbox = Outbox::default();
        if let Some(copies) = state.carry.filter(|c| !state.local && *c > 0) {
            // The copies die at the node that wanted the block; anywhere else they travel on.
            self.stats.carries += 1;
            let since = self.next_custody_seq();
            let replicas = self.cfg.replicas_per_custody;
            self.custody.insert(cid, Custody { copies, interest_until: state.interest_expiry(), since, replicas });
        }
        if state.local {
            self.out.push_back(Action::Delivered { cid });
            if from.is_some() {
                self.announce_done(now, cid, &mut outbox);
            }
        }
        for &to in state.owed.keys() {
            if Some(to) != from {
                self.out.push_back(Action::SendBlock { to, cid });
                self.stats.blocks_sent += 1;
            }
        }
        for &r in state.requesters.keys() {
            self.release_want_slot(r);
            if !state.owed.contains_key(&r) && Some(r) != from {
                outbox.have(r, cid, 0);
            }
        }
        for &f in &state.forwarded {
            if Some(f) != from {
                // They no longer need to look for us, but they may want it too (their want crossed ours).
                outbox.cancel(f, cid);
                outbox.have(f, cid, 0);
            }
        }
        self.retry_waiters(now, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// Marks `cid` as held without any transfer (startup, local put).
    pub fn add_held(&mut self, cid: Cid) {
        if self.held.insert(cid) {
            self.own.insert(&cid);
            self.summary_dirty = true;
        }
    }

    /// Holds `cid` with a spray budget of `copies`: neighbours met later are offered copies to carry toward
    /// requesters nobody knows yet (binary spray: each hand-over gives away half), and the last copy moves to a
    /// neighbour that met a requester more recently (focus). 0 publishes without carrying.
    pub fn publish(&mut self, cid: Cid, copies: u32) {
        self.add_held(cid);
        if copies > 0 {
            let since = self.next_custody_seq();
            let replicas = self.cfg.replicas_per_custody;
            self.custody.insert(cid, Custody { copies, interest_until: 0, since, replicas });
        }
    }

    /// Copies of `cid` this node may still hand out (0: it holds no custody, so the store may evict it first).
    pub fn spray_budget(&self, cid: &Cid) -> u32 {
        self.custody.get(cid).map_or(0, |c| c.copies)
    }

    /// How many more copies the store can take in custody without evicting blocks in custody. Offers beyond that
    /// are declined: taking a copy by evicting another carrier's copy only trades one message's chances for
    /// another's, at the cost of a transfer.
    pub fn set_carry_room(&mut self, copies: usize) {
        self.carry_room = copies;
    }

    /// How many more blocks fit in the store without evicting a block that may still reach a requester: replicas
    /// offered by neighbours are fetched into that room only.
    pub fn set_spare_room(&mut self, blocks: usize) {
        self.spare_room = blocks;
    }

    /// The store evicted `cid`.
    pub fn forget(&mut self, cid: &Cid) {
        self.custody.remove(cid);
        if self.held.remove(cid) {
            self.own_dirty = true;
            self.summary_dirty = true;
        }
    }

    /// A neighbour sent a block that does not hash to its CID: drop it and try elsewhere.
    pub fn block_refused(&mut self, now: Time, from: P, cid: Cid) {
        self.out.push_back(Action::Disconnect { peer: from, reason: Penalty::BadBlock });
        if let Some(state) = self.wants.get_mut(&cid) {
            state.failed.insert(from);
        }
        if self.wants.get(&cid).is_some_and(|s| s.fetching_from(&from)) {
            self.end_fetch(&cid);
        }
        let mut outbox = Outbox::default();
        self.fetch_or_give_up(now, cid, &mut outbox);
        self.retry_waiters(now, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// A neighbour connected: it gets our summary and our live wants.
    pub fn peer_connected(&mut self, now: Time, peer: P) {
        let bucket = TokenBucket::new(now, self.cfg.want_burst, self.cfg.want_rate_per_s);
        self.neighbors.insert(peer, Neighbor { own: Bloom::default(), near: Bloom::default(), bucket, wants: 0 });
        let summary = self.summary();
        self.send(peer, summary);
        let mut outbox = Outbox::default();
        // Newest custody first: an encounter may be too short for every offer, and a copy taken recently has the
        // most lifetime left to reach its requester.
        let mut spray: Vec<(u64, Cid, u32)> =
            self.custody.iter().filter(|(_, c)| c.copies > 1).map(|(cid, c)| (c.since, *cid, c.copies / 2)).collect();
        spray.sort_by_key(|s| std::cmp::Reverse(s.0));
        let offers: Vec<(Cid, u32)> =
            spray.into_iter().take(self.cfg.offers_per_encounter).map(|(_, cid, n)| (cid, n)).collect();
        for (cid, copies) in offers {
            outbox.offer(peer, cid, copies);
            self.offers.insert((peer, cid), copies);
            self.stats.offers_sent += 1;
        }
        // Replicas of what we carry (newest custody first), for a neighbour with spare room.
        let mut replicas: Vec<(u64, Cid)> = self
            .custody
            .iter()
            .filter(|(c, k)| k.replicas > 0 && !self.offers.contains_key(&(peer, **c)))
            .map(|(c, k)| (k.since, *c))
            .collect();
        replicas.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, cid) in replicas.into_iter().take(self.cfg.offers_per_encounter) {
            outbox.have(peer, cid, 0);
            self.offers.insert((peer, cid), 0);
        }
        let cids: Vec<Cid> = self.wants.keys().copied().collect();
        for cid in cids {
            if let Some(state) = self.wants.get_mut(&cid) {
                let ttl = state.ttl_to_forward(now, self.cfg.want_ttl_ms);
                if (state.local || state.hops_left > 0) && ttl > 0 && !state.requesters.contains_key(&peer) {
                    outbox.want(peer, WantEntry { cid, id: state.id, hops_left: state.hops_left, ttl_ms: ttl });
                    state.forwarded.insert(peer);
                    self.stats.wants_forwarded += 1;
                }
            }
        }
        self.tell_all_done(now, peer, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// A neighbour went away: its interests end, and fetches from it move on.
    pub fn peer_disconnected(&mut self, now: Time, peer: P) {
        self.neighbors.remove(&peer);
        self.offers.retain(|(p, _), _| *p != peer);
        self.done_peer_gone(&peer);
        self.in_flight.remove(&peer);
        self.summary_dirty = true;
        let mut outbox = Outbox::default();
        let cids: Vec<Cid> = self.wants.keys().copied().collect();
        for cid in cids {
            if let Some(state) = self.wants.get_mut(&cid) {
                state.forget_peer(&peer);
            }
            self.fetch_or_give_up(now, cid, &mut outbox);
            self.collect(cid, &mut outbox);
        }
        self.retry_waiters(now, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// This node's application wants `cid`.
    pub fn want(&mut self, now: Time, cid: Cid) {
        if self.held.contains(&cid) {
            self.out.push_back(Action::Delivered { cid });
            return;
        }
        let id = self.new_id();
        let hops = self.cfg.want_hops;
        let state = self.wants.entry(cid).or_insert_with(|| WantState::new(id, hops));
        state.local = true;
        state.next_rewant = now + self.cfg.rewant_interval_ms;
        let mut outbox = Outbox::default();
        self.spread(now, cid, None, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// This node's application no longer wants `cid`.
    pub fn cancel(&mut self, _now: Time, cid: Cid) {
        if let Some(state) = self.wants.get_mut(&cid) {
            state.local = false;
        }
        let mut outbox = Outbox::default();
        self.collect(cid, &mut outbox);
        outbox.flush(&mut self.out);
    }

    /// A control message from a neighbour.
    pub fn handle(&mut self, now: Time, from: P, msg: Control) {
        if !self.neighbors.contains_key(&from) {
            return;
        }
        let mut outbox = Outbox::default();
        match msg {
            Control::Summary { own, near } => {
                if let Some(n) = self.neighbors.get_mut(&from) {
                    // Our `near` summary is the union of neighbours' `own`: only a change there is news for others.
                    self.summary_dirty |= n.own != own;
                    n.own = own;
                    n.near = near;
                }
            }
            Control::Want(entries) => {
                for entry in entries {
                    self.on_want(now, from, entry, &mut outbox);
                }
            }
            Control::Have(entries) => {
                for entry in entries {
                    if entry.copies > 0 {
                        self.on_offer(now, from, entry.cid, entry.copies, &mut outbox);
                    } else {
                        self.on_have(now, from, entry.cid, entry.hops, &mut outbox);
                    }
                }
            }
            Control::Request(entries) => {
                for entry in entries {
                    self.on_request(now, from, entry.cid, entry.within, &mut outbox);
                }
            }
            Control::DontHave(cids) => {
                for cid in cids {
                    if let Some(state) = self.wants.get_mut(&cid) {
                        state.providers.remove(&from);
                        state.failed.insert(from);
                    }
                    if self.wants.get(&cid).is_some_and(|s| s.fetching_from(&from)) {
                        self.end_fetch(&cid);
                    }
                    self.fetch_or_give_up(now, cid, &mut outbox);
                }
                self.retry_waiters(now, &mut outbox);
            }
            Control::Cancel(cids) => {
                for cid in cids {
                    if let Some(state) = self.wants.get_mut(&cid) {
                        let had = state.requesters.remove(&from).is_some();
                        state.owed.remove(&from);
                        state.announced.remove(&from);
                        // A CANCEL means the sender dropped its state for the CID, our want with it: the next spread
                        // must reach it again.
                        state.forwarded.remove(&from);
                        if had {
                            self.release_want_slot(from);
                        }
                    }
                    self.collect(cid, &mut outbox);
                }
            }
        }
        outbox.flush(&mut self.out);
    }

    fn release_want_slot(&mut self, peer: P) {
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.wants = n.wants.saturating_sub(1);
        }
    }

    fn on_want(&mut self, now: Time, from: P, entry: WantEntry, outbox: &mut Outbox<P>) {
        self.stats.wants_in += 1;
        let Some(neighbor) = self.neighbors.get_mut(&from) else { return };
        if !neighbor.bucket.take(now) {
            self.stats.wants_rate_limited += 1;
            return;
        }
        if entry.ttl_ms == 0 {
            // No lifetime left: the want was satisfied (a done notice).
            self.on_done(now, from, &entry, outbox);
            return;
        }
        if self.held.contains(&entry.cid) {
            self.answer_want_for_held(now, from, &entry, outbox);
            return;
        }
        if !self.cfg.relay || entry.ttl_ms == 0 {
            return;
        }
        let fresh_flood = self.seen.insert(entry.id);
        let known = self.wants.contains_key(&entry.cid);
        if !known && self.wants.len() >= self.cfg.max_wants {
            self.stats.wants_table_full += u64::from(fresh_flood);
            return;
        }
        let per_neighbor_full = neighbor.wants >= self.cfg.max_wants_per_neighbor;
        let hops_left = entry.hops_left.saturating_sub(1);
        let state = self.wants.entry(entry.cid).or_insert_with(|| WantState::new(entry.id, hops_left));
        if !state.requesters.contains_key(&from) {
            if per_neighbor_full {
                self.stats.wants_table_full += 1;
                self.collect(entry.cid, outbox);
                return;
            }
            if let Some(n) = self.neighbors.get_mut(&from) {
                n.wants += 1;
            }
        }
        let expires = now + u64::from(entry.ttl_ms.min(self.cfg.want_ttl_ms));
        let Some(state) = self.wants.get_mut(&entry.cid) else { return };
        state.requesters.insert(from, expires);
        state.hops_left = state.hops_left.max(entry.hops_left.saturating_sub(1));
        self.spread(now, entry.cid, Some(from), outbox);
    }

    /// Looks for providers (known HAVEs, then neighbours' summaries); answers requesters with a proxy HAVE when
    /// one is known, otherwise floods the want to the neighbours that have not seen it.
    fn spread(&mut self, now: Time, cid: Cid, from: Option<P>, outbox: &mut Outbox<P>) {
        self.providers_from_summaries(cid, from);
        let neighbors: Vec<P> = self.neighbors.keys().copied().collect();
        let Some(state) = self.wants.get_mut(&cid) else { return };
        if let Some((_, hops)) = state.best_provider() {
            for (&r, _) in state.requesters.iter() {
                if state.announced.insert(r) {
                    outbox.have(r, cid, hops.saturating_add(1));
                }
            }
            if state.local && state.fetch.is_none() {
                self.fetch_or_give_up(now, cid, outbox);
            }
            return;
        }
        if state.hops_left == 0 && !state.local {
            return;
        }
        let entry = WantEntry {
            cid,
            id: state.id,
            hops_left: state.hops_left,
            ttl_ms: state.ttl_to_forward(now, self.cfg.want_ttl_ms),
        };
        if entry.ttl_ms == 0 {
            return;
        }
        // Requesters are asked too (but not the sender of this want): when two floods cross, each side must learn
        // the other wants it, or a provider found on one side never reaches the other.
        for p in neighbors {
            if Some(p) != from && state.forwarded.insert(p) {
                outbox.want(p, entry.clone());
                self.stats.wants_forwarded += 1;
            }
        }
    }

    /// Adds the neighbours (but `except`) whose summaries list `cid` as providers: 0 hops from their `own`
    /// summary, 1 from their `near` one. A HAVE already heard keeps its distance, and a failed neighbour stays out.
    pub(super) fn providers_from_summaries(&mut self, cid: Cid, except: Option<P>) {
        let key = BloomKey::of(&cid);
        let hits: Vec<(P, u8)> = self
            .neighbors
            .iter()
            .filter(|(p, _)| Some(**p) != except)
            .filter_map(|(p, n)| {
                if n.own.contains_key(key) {
                    Some((*p, 0))
                } else if n.near.contains_key(key) {
                    Some((*p, 1))
                } else {
                    None
                }
            })
            .collect();
        let Some(state) = self.wants.get_mut(&cid) else { return };
        for (p, hops) in hits {
            if !state.failed.contains(&p) {
                state.providers.entry(p).or_insert(hops);
            }
        }
    }

    fn on_have(&mut self, now: Time, from: P, cid: Cid, hops: u8, outbox: &mut Outbox<P>) {
        let Some(state) = self.wants.get_mut(&cid) else {
            if hops == 0 {
                self.maybe_replicate(now, from, cid, outbox);
            }
            return;
        };
        let entry = state.providers.entry(from).or_insert(hops);
        *entry = (*entry).min(hops);
        state.failed.remove(&from);
        let announce: Vec<P> = state.requesters.keys().copied().filter(|r| *r != from).collect();
        for r in announce {
            if state.announced.insert(r) {
                outbox.have(r, cid, hops.saturating_add(1));
            }
        }
        if state.fetching_for_someone() {
            self.fetch_or_give_up(now, cid, outbox);
        }
    }

    /// A neighbour offers a spray copy: carry it when there is room (and it is not already here or wanted).
    fn on_offer(&mut self, now: Time, from: P, cid: Cid, copies: u32, outbox: &mut Outbox<P>) {
        if self.held.contains(&cid) || self.done.contains_key(&cid) {
            return;
        }
        if let Some(state) = self.wants.get_mut(&cid) {
            // Wanted anyway: the offer is a provider, and the copies come along.
            state.carry = Some(state.carry.unwrap_or(0).max(copies));
            self.on_have(now, from, cid, 0, outbox);
            return;
        }
        let carrying = self.wants.values().filter(|w| w.carry.is_some()).count();
        if !self.cfg.relay
            || carrying >= self.cfg.max_carries.min(self.carry_room)
            || self.wants.len() >= self.cfg.max_wants
        {
            return;
        }
        let mut state = WantState::new(0, 0);
        state.carry = Some(copies);
        state.providers.insert(from, 0);
        self.wants.insert(cid, state);
        self.fetch_or_give_up(now, cid, outbox);
    }

    /// A neighbour holds a block nobody here wants: with spare room, fetch a replica (no custody; evicted first).
    fn maybe_replicate(&mut self, now: Time, from: P, cid: Cid, outbox: &mut Outbox<P>) {
        if !self.cfg.relay || self.held.contains(&cid) || self.done.contains_key(&cid) {
            return;
        }
        let fetching = self.wants.values().filter(|w| w.carry == Some(0)).count();
        if fetching >= self.spare_room || self.wants.len() >= self.cfg.max_wants {
            return;
        }
        let mut state = WantState::new(0, 0);
        state.carry = Some(0);
        state.providers.insert(from, 0);
        self.wants.insert(cid, state);
        self.fetch_or_give_up(now, cid, outbox);
    }

    /// Drops the state of a CID nobody wants any more, cancelling it where it was forwarded.
    pub(super) fn collect(&mut self, cid: Cid, outbox: &mut Outbox<P>) {
        let Some(state) = self.wants.get(&cid) else { return };
        if state.live() {
            return;
        }
        self.slot_waiters.remove(&cid);
        if let Some(state) = self.wants.remove(&cid) {
            for f in state.forwarded.iter().chain(state.fetch.as_ref().map(|f| &f.provider)) {
                outbox.cancel(*f, cid);
            }
            if let Some(fetch) = state.fetch {
                self.free_slot(fetch.provider);
            }
        }
    }

    // --- time ---

    /// The next instant [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Time> {
        let summary = (self.summary_dirty && !self.neighbors.is_empty()).then_some(self.next_summary);
        self.wants.values().filter_map(WantState::next_deadline).chain(summary).min()
    }

    /// Runs request timeouts, want expiry, re-floods of unanswered local wants, and summary refreshes.
    pub fn handle_timeout(&mut self, now: Time) {
        let mut outbox = Outbox::default();
        let due: Vec<Cid> =
            self.wants.iter().filter(|(_, s)| s.next_deadline().is_some_and(|t| t <= now)).map(|(c, _)| *c).collect();
        for cid in due {
            let mut expired = Vec::new();
            if let Some(state) = self.wants.get_mut(&cid) {
                if let Some(fetch) = state.fetch {
                    if fetch.deadline <= now {
                        state.fetch = None;
                        state.failed.insert(fetch.provider);
                        self.stats.request_timeouts += 1;
                        if let Some(n) = self.in_flight.get_mut(&fetch.provider) {
                            *n = n.saturating_sub(1);
                        }
                    }
                }
                state.requesters.retain(|p, t| {
                    let keep = *t > now;
                    if !keep {
                        expired.push(*p);
                    }
                    keep
                });
                for p in &expired {
                    state.announced.remove(p);
                }
                if state.interest_until <= now {
                    state.interest_until = 0;
                }
                if state.local && state.fetch.is_none() && state.next_rewant <= now && state.best_provider().is_none() {
                    // Nobody answered: flood again under a new id, to everyone, including past failures.
                    state.failed.clear();
                    state.forwarded.clear();
                    state.hops_left = self.cfg.want_hops;
                    state.next_rewant = now + self.cfg.rewant_interval_ms;
                }
            }
            for p in expired {
                self.release_want_slot(p);
            }
            if self.wants.get(&cid).is_some_and(|s| s.local && s.forwarded.is_empty()) {
                let id = self.new_id();
                if let Some(state) = self.wants.get_mut(&cid) {
                    state.id = id;
                }
                self.spread(now, cid, None, &mut outbox);
            }
            self.fetch_or_give_up(now, cid, &mut outbox);
            self.collect(cid, &mut outbox);
        }
        self.retry_waiters(now, &mut outbox);
        if self.summary_dirty && now >= self.next_summary && !self.neighbors.is_empty() {
            self.summary_dirty = false;
            self.next_summary = now + self.cfg.summary_interval_ms;
            let summary = self.summary();
            let peers: Vec<P> = self.neighbors.keys().copied().collect();
            for p in peers {
                self.send(p, summary.clone());
            }
        }
        outbox.flush(&mut self.out);
    }
}

mod fetch;
#[cfg(test)]
mod tests;
