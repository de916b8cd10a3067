//! Fetching: one outstanding REQUEST per CID, request slots per provider, and the limits that keep chains of
//! REQUESTs loop-free (`docs/want-gossip.md` §5).

use cid::Cid;

use super::Router;
use crate::gossip::tables::{Fetch, Outbox, WantState};
use crate::gossip::{Action, PeerKey, Time};

impl<P: PeerKey> Router<P> {
    pub(super) fn on_request(&mut self, now: Time, from: P, cid: Cid, within: Option<u8>, outbox: &mut Outbox<P>) {
        if self.held.contains(&cid) {
            self.out.push_back(Action::SendBlock { to: from, cid });
            self.stats.blocks_sent += 1;
            self.copies_given(from, cid);
            return;
        }
        if self.wants.get(&cid).is_some_and(|s| s.fetching_from(&from)) {
            // Our request for it went to the very neighbour now asking us: both heard the other was near it and
            // would wait on each other until the timeouts. Refuse, so each looks elsewhere.
            outbox.dont_have(from, cid);
            return;
        }
        let fetch = self.wants.get(&cid).and_then(|s| s.fetch);
        if fetch.zip(within).is_some_and(|(f, w)| f.within >= w) {
            // Our own request is no closer to the block than the requester was told we are: joining it could close
            // a loop of requests that only timeouts would break.
            outbox.dont_have(from, cid);
            return;
        }
        if !self.wants.contains_key(&cid) {
            if self.wants.len() >= self.cfg.max_wants {
                outbox.dont_have(from, cid);
                return;
            }
            let id = self.new_id();
            self.wants.insert(cid, WantState::new(id, 0));
            self.spread(now, cid, Some(from), outbox);
        } else {
            // Summaries that arrived since the want was spread may name a closer provider than any HAVE.
            self.providers_from_summaries(cid, Some(from));
        }
        if let Some(state) = self.wants.get_mut(&cid) {
            state.owed.insert(from, within);
        }
        self.fetch_or_give_up(now, cid, outbox);
    }

    /// Sends a REQUEST to the best provider if none is outstanding. With no provider left, requesters that are
    /// owed the block hear DONT_HAVE and a local want waits for its next flood.
    pub(super) fn fetch_or_give_up(&mut self, now: Time, cid: Cid, outbox: &mut Outbox<P>) {
        let timeout = self.cfg.request_timeout_ms;
        let cap = self.cfg.max_requests_per_neighbor.max(1);
        let Some(state) = self.wants.get_mut(&cid) else { return };
        if state.fetch.is_some() || !state.fetching_for_someone() {
            return;
        }
        // A neighbour that asked us for the block does not hold it; asking it back would make a waiting loop.
        let mut candidates: Vec<(u8, P)> = state
            .providers
            .iter()
            .filter(|(p, _)| !state.failed.contains(p) && !state.owed.contains_key(p))
            .map(|(p, h)| (*h, *p))
            .collect();
        candidates.sort();
        if let Some(&(closest, _)) = candidates.first() {
            // Requesters told we are no farther than `closest` are refused: served from farther away, their
            // requests could chain back to them.
            let refused: Vec<P> =
                state.owed.iter().filter(|(_, w)| w.is_some_and(|w| w <= closest)).map(|(p, _)| *p).collect();
            for p in refused {
                state.owed.remove(&p);
                outbox.dont_have(p, cid);
            }
            if !state.fetching_for_someone() {
                self.collect(cid, outbox);
                return;
            }
        }
        let limit = state.owed_limit();
        let free = candidates
            .iter()
            .find(|(hops, p)| limit.is_none_or(|l| *hops < l) && self.in_flight.get(p).copied().unwrap_or(0) < cap);
        match (free, candidates.is_empty()) {
            (Some(&(hops, provider)), _) => {
                outbox.request(provider, cid, hops);
                // A relay answers once its own upstream answered or timed out: give it one timeout per hop, or
                // the request is repeated elsewhere while the first copy is still on its way (a duplicate).
                let deadline = now + timeout * (1 + u64::from(hops));
                state.fetch = Some(Fetch { provider, deadline, within: hops });
                *self.in_flight.entry(provider).or_default() += 1;
                self.slot_waiters.remove(&cid);
                self.stats.requests_sent += 1;
            }
            (None, false) => {
                // Every provider is busy: asking anyway would queue the block behind others and time out.
                self.slot_waiters.insert(cid);
            }
            (None, true) => {
                for o in std::mem::take(&mut state.owed).into_keys() {
                    outbox.dont_have(o, cid);
                }
                if state.local {
                    state.next_rewant = state.next_rewant.min(now + self.cfg.rewant_interval_ms);
                }
                self.slot_waiters.remove(&cid);
                self.collect(cid, outbox);
            }
        }
    }

    /// Ends the outstanding REQUEST of `cid` (if any), freeing the provider's slot.
    pub(super) fn end_fetch(&mut self, cid: &Cid) {
        let ended = self.wants.get_mut(cid).and_then(|s| s.fetch.take());
        if let Some(fetch) = ended {
            self.free_slot(fetch.provider);
        }
    }

    pub(super) fn free_slot(&mut self, provider: P) {
        if let Some(n) = self.in_flight.get_mut(&provider) {
            *n = n.saturating_sub(1);
        }
    }

    /// Gives waiting CIDs the request slots that freed up.
    pub(super) fn retry_waiters(&mut self, now: Time, outbox: &mut Outbox<P>) {
        let waiting: Vec<Cid> = self.slot_waiters.iter().copied().collect();
        for cid in waiting {
            self.fetch_or_give_up(now, cid, outbox);
        }
    }
}
