//! The router's bounded bookkeeping: per-CID want state, loop suppression, rate limits, outgoing batches.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use cid::Cid;

use super::{Action, Control, HaveEntry, PeerKey, RequestEntry, Time, WantEntry};

/// Everything the router knows about one wanted CID.
#[derive(Debug)]
pub(super) struct WantState<P> {
    /// Wanted by this node's own application.
    pub(super) local: bool,
    /// Flood id and remaining hop budget of the want this node propagates.
    pub(super) id: u64,
    pub(super) hops_left: u8,
    /// Neighbours that sent us the want, with when their interest expires.
    pub(super) requesters: BTreeMap<P, Time>,
    /// Neighbours that requested the block from us, with the limit of their REQUEST: we owe them the block.
    pub(super) owed: BTreeMap<P, Option<u8>>,
    /// Neighbours we sent the want to.
    pub(super) forwarded: BTreeSet<P>,
    /// Requesters we told that we can provide it.
    pub(super) announced: BTreeSet<P>,
    /// Neighbours that can provide it, with their distance in hops.
    pub(super) providers: BTreeMap<P, u8>,
    /// Providers that failed us (DONT_HAVE, timeout) for this CID.
    pub(super) failed: BTreeSet<P>,
    /// The one outstanding REQUEST.
    pub(super) fetch: Option<Fetch<P>>,
    /// Next time a provider-less local want floods again.
    pub(super) next_rewant: Time,
    /// Fetching a spray copy to carry, with the copies it will hold.
    pub(super) carry: Option<u32>,
    /// Until when the wants of requesters that left (disconnected, not cancelled) last (0: none). A relay keeps
    /// forwarding what remains of them to neighbours it meets later.
    pub(super) interest_until: Time,
}

impl<P: PeerKey> WantState<P> {
    pub(super) fn new(id: u64, hops_left: u8) -> Self {
        Self {
            local: false,
            id,
            hops_left,
            requesters: BTreeMap::new(),
            owed: BTreeMap::new(),
            forwarded: BTreeSet::new(),
            announced: BTreeSet::new(),
            providers: BTreeMap::new(),
            failed: BTreeSet::new(),
            fetch: None,
            next_rewant: Time::MAX,
            carry: None,
            interest_until: 0,
        }
    }

    /// Whether anybody still cares.
    pub(super) fn live(&self) -> bool {
        self.local
            || !self.requesters.is_empty()
            || !self.owed.is_empty()
            || self.carry.is_some()
            || self.interest_until > 0
    }

    /// Lifetime left to pass on with this want: the full lifetime for our own, what remains for a relayed one.
    pub(super) fn ttl_to_forward(&self, now: Time, full: u32) -> u32 {
        if self.local {
            full
        } else {
            u32::try_from(self.interest_expiry().saturating_sub(now)).unwrap_or(u32::MAX).min(full)
        }
    }

    /// The latest expiry of any requester's want, present or departed (0: none).
    pub(super) fn interest_expiry(&self) -> Time {
        self.requesters.values().copied().chain([self.interest_until]).max().unwrap_or(0)
    }

    /// Whether this node needs the block itself (not just to answer wants).
    pub(super) fn fetching_for_someone(&self) -> bool {
        self.local || !self.owed.is_empty() || self.carry.is_some()
    }

    /// The provider to ask next: fewest hops, then lowest key; never one that failed.
    pub(super) fn best_provider(&self) -> Option<(P, u8)> {
        self.providers
            .iter()
            .filter(|(p, _)| !self.failed.contains(p))
            .min_by_key(|(p, hops)| (**hops, **p))
            .map(|(p, h)| (*p, *h))
    }

    /// Whether the outstanding REQUEST went to `peer`.
    pub(super) fn fetching_from(&self, peer: &P) -> bool {
        self.fetch.is_some_and(|f| f.provider == *peer)
    }

    /// The strictest limit among the REQUESTs we owe (`None`: no limit).
    pub(super) fn owed_limit(&self) -> Option<u8> {
        self.owed.values().flatten().copied().min()
    }

    pub(super) fn forget_peer(&mut self, peer: &P) {
        if let Some(expires) = self.requesters.remove(peer) {
            self.interest_until = self.interest_until.max(expires);
        }
        self.owed.remove(peer);
        self.forwarded.remove(peer);
        self.announced.remove(peer);
        self.providers.remove(peer);
        self.failed.remove(peer);
        if self.fetching_from(peer) {
            self.fetch = None;
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Time> {
        let fetch = self.fetch.map(|f| f.deadline);
        let expiry = self.requesters.values().min().copied();
        let interest = (self.interest_until > 0).then_some(self.interest_until);
        // Re-flooding is for wants nobody answered; one waiting for a busy provider's slot has nothing due.
        let rewant = (self.local && self.fetch.is_none() && self.best_provider().is_none()).then_some(self.next_rewant);
        [fetch, expiry, interest, rewant].into_iter().flatten().min()
    }
}

/// A REQUEST this node sent and is waiting on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fetch<P> {
    pub(super) provider: P,
    pub(super) deadline: Time,
    /// The provider's advertised distance, sent as the REQUEST's limit.
    pub(super) within: u8,
}

/// Remembers recent want ids, to drop a want that comes back around a loop. Bounded FIFO.
#[derive(Debug)]
pub(super) struct SeenIds {
    order: VecDeque<u64>,
    set: HashSet<u64>,
    cap: usize,
}

impl SeenIds {
    pub(super) fn new(cap: usize) -> Self {
        Self { order: VecDeque::new(), set: HashSet::new(), cap: cap.max(1) }
    }

    /// Records `id`; false if it was already there.
    pub(super) fn insert(&mut self, id: u64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Per-neighbour want admission: a token bucket in want entries.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    tokens: f64,
    last: Time,
    burst: f64,
    per_ms: f64,
}

impl TokenBucket {
    pub(super) fn new(now: Time, burst: u32, per_s: u32) -> Self {
        Self { tokens: f64::from(burst), last: now, burst: f64::from(burst), per_ms: f64::from(per_s) / 1000.0 }
    }

    pub(super) fn take(&mut self, now: Time) -> bool {
        let elapsed = now.saturating_sub(self.last) as f64;
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Control entries collected during one call, sent as one message per kind and neighbour.
#[derive(Debug)]
pub(super) struct Outbox<P> {
    want: BTreeMap<P, Vec<WantEntry>>,
    have: BTreeMap<P, Vec<HaveEntry>>,
    dont_have: BTreeMap<P, Vec<Cid>>,
    request: BTreeMap<P, Vec<RequestEntry>>,
    cancel: BTreeMap<P, Vec<Cid>>,
}

impl<P: PeerKey> Default for Outbox<P> {
    fn default() -> Self {
        Self {
            want: BTreeMap::new(),
            have: BTreeMap::new(),
            dont_have: BTreeMap::new(),
            request: BTreeMap::new(),
            cancel: BTreeMap::new(),
        }
    }
}

impl<P: PeerKey> Outbox<P> {
    pub(super) fn want(&mut self, to: P, entry: WantEntry) {
        self.want.entry(to).or_default().push(entry);
    }
    pub(super) fn have(&mut self, to: P, cid: Cid, hops: u8) {
        self.have.entry(to).or_default().push(HaveEntry { cid, hops, copies: 0 });
    }
    pub(super) fn offer(&mut self, to: P, cid: Cid, copies: u32) {
        self.have.entry(to).or_default().push(HaveEntry { cid, hops: 0, copies });
    }
    pub(super) fn dont_have(&mut self, to: P, cid: Cid) {
        self.dont_have.entry(to).or_default().push(cid);
    }
    pub(super) fn request(&mut self, to: P, cid: Cid, within: u8) {
        self.request.entry(to).or_default().push(RequestEntry { cid, within: Some(within) });
    }
    pub(super) fn cancel(&mut self, to: P, cid: Cid) {
        self.cancel.entry(to).or_default().push(cid);
    }

    /// Turns the batches into send actions, chunked to the wire's per-message limit.
    pub(super) fn flush(self, out: &mut VecDeque<Action<P>>) {
        let chunk = super::wire::MAX_ENTRIES;
        let mut send = |to: P, msg: Control| out.push_back(Action::Send { to, msg });
        for (to, v) in self.cancel {
            v.chunks(chunk).for_each(|c| send(to, Control::Cancel(c.to_vec())));
        }
        for (to, v) in self.dont_have {
            v.chunks(chunk).for_each(|c| send(to, Control::DontHave(c.to_vec())));
        }
        for (to, v) in self.have {
            v.chunks(chunk).for_each(|c| send(to, Control::Have(c.to_vec())));
        }
        for (to, v) in self.request {
            v.chunks(chunk).for_each(|c| send(to, Control::Request(c.to_vec())));
        }
        for (to, v) in self.want {
            v.chunks(chunk).for_each(|c| send(to, Control::Want(c.to_vec())));
        }
    }
}
