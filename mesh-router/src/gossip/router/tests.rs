use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::gossip::{HaveEntry, RequestEntry, RouterStats, WantEntry};
use crate::unixfs::{cid_v1_sha256, RAW_CODEC};

fn cid(n: u32) -> Cid {
    cid_v1_sha256(RAW_CODEC, &n.to_be_bytes())
}

/// Routers on a graph with instant, in-order delivery. Records every block transfer.
struct Net {
    routers: Vec<Router<usize>>,
    links: BTreeSet<(usize, usize)>,
    now: Time,
    transfers: Vec<(usize, usize, Cid)>,
    delivered: Vec<(usize, Cid)>,
    disconnects: Vec<(usize, usize)>,
    /// Nodes that send a wrong block instead of the real one.
    liars: BTreeSet<usize>,
}

impl Net {
    fn new(n: usize, edges: &[(usize, usize)]) -> Self {
        Self::with_config(n, edges, RouterConfig::default())
    }

    fn with_config(n: usize, edges: &[(usize, usize)], cfg: RouterConfig) -> Self {
        let routers =
            (0..n).map(|i| Router::new(RouterConfig { id_seed: i as u64 * 7919 + 1, ..cfg.clone() })).collect();
        let mut net = Self {
            routers,
            links: BTreeSet::new(),
            now: 0,
            transfers: Vec::new(),
            delivered: Vec::new(),
            disconnects: Vec::new(),
            liars: BTreeSet::new(),
        };
        for &(a, b) in edges {
            net.connect(a, b);
        }
        net.pump();
        net
    }

    fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        self.routers[a].peer_connected(self.now, b);
        self.routers[b].peer_connected(self.now, a);
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            self.routers[a].peer_disconnected(self.now, b);
            self.routers[b].peer_disconnected(self.now, a);
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    /// Delivers actions until every router is quiet.
    fn pump(&mut self) {
        let mut queue: VecDeque<(usize, Action<usize>)> = VecDeque::new();
        loop {
            for i in 0..self.routers.len() {
                while let Some(a) = self.routers[i].poll_action() {
                    queue.push_back((i, a));
                }
            }
            let Some((from, action)) = queue.pop_front() else { return };
            match action {
                Action::Send { to, msg } if self.linked(from, to) => self.routers[to].handle(self.now, from, msg),
                Action::SendBlock { to, cid } if self.linked(from, to) => {
                    assert!(self.routers[from].holds(&cid), "{from} sent {cid} it does not hold");
                    self.transfers.push((from, to, cid));
                    if self.liars.contains(&from) {
                        self.routers[to].block_refused(self.now, from, cid);
                    } else {
                        self.routers[to].block_arrived(self.now, Some(from), cid);
                    }
                }
                Action::Delivered { cid } => self.delivered.push((from, cid)),
                Action::Disconnect { peer, .. } => {
                    self.disconnects.push((from, peer));
                    self.disconnect(from, peer);
                }
                Action::Send { .. } | Action::SendBlock { .. } => {}
            }
        }
    }

    /// Advances time to the next deadline (or by `max`) and runs timeouts.
    fn advance(&mut self, max: Time) {
        let next = self.routers.iter().filter_map(Router::poll_timeout).min().unwrap_or(self.now + max);
        self.now = next.clamp(self.now, self.now + max);
        for r in &mut self.routers {
            r.handle_timeout(self.now);
        }
        self.pump();
    }

    fn got(&self, node: usize, c: Cid) -> bool {
        self.delivered.contains(&(node, c))
    }

    fn received(&self, node: usize, c: Cid) -> usize {
        self.transfers.iter().filter(|(_, to, x)| *to == node && *x == c).count()
    }
}

fn line(n: usize) -> Vec<(usize, usize)> {
    (0..n - 1).map(|i| (i, i + 1)).collect()
}

#[test]
fn block_crosses_a_line_hop_by_hop_and_is_cached() {
    let mut net = Net::new(4, &line(4));
    let x = cid(1);
    net.routers[3].add_held(x);
    net.routers[0].want(net.now, x);
    net.pump();
    assert!(net.got(0, x));
    assert_eq!(net.transfers, vec![(3, 2, x), (2, 1, x), (1, 0, x)]);
    assert!(net.routers[1].holds(&x) && net.routers[2].holds(&x), "relays keep a copy");
    assert!(net.routers.iter().all(|r| r.wanted() == 0), "no state left behind");
}

#[test]
fn two_requesters_behind_one_relay_cause_one_fetch() {
    // 0 and 4 both hang off relay 1; the block sits three hops away at 3.
    let mut net = Net::new(5, &[(0, 1), (4, 1), (1, 2), (2, 3)]);
    let x = cid(2);
    net.routers[3].add_held(x);
    net.routers[0].want(net.now, x);
    net.routers[4].want(net.now, x);
    net.pump();
    assert!(net.got(0, x) && net.got(4, x));
    assert_eq!(net.received(1, x), 1, "the relay fetched once");
    assert_eq!(net.received(2, x), 1);
    assert_eq!(net.transfers.len(), 4);
}

#[test]
fn summaries_find_a_neighbours_block_without_flooding() {
    let mut net = Net::new(3, &line(3));
    let x = cid(3);
    net.routers[1].add_held(x);
    net.advance(10_000);
    let before = net.routers[0].stats();
    net.routers[0].want(net.now, x);
    net.pump();
    assert!(net.got(0, x));
    assert_eq!(net.routers[0].stats().wants_forwarded, before.wants_forwarded, "asked directly, no WANT sent");
    assert_eq!(net.routers[2].stats().wants_in, 0);
}

#[test]
fn timeout_and_dont_have_fall_back_to_another_provider() {
    // 0 reaches holders 2 and 3 through different relays 1 and 4.
    let mut net = Net::new(5, &[(0, 1), (1, 2), (0, 4), (4, 3)]);
    let x = cid(4);
    net.routers[2].add_held(x);
    net.routers[3].add_held(x);
    // The path through 1 breaks after the HAVEs arrived: the request must time out or fail over.
    net.routers[0].want(net.now, x);
    let mut steps = 0;
    while !net.got(0, x) && steps < 20 {
        if steps == 0 {
            net.disconnect(1, 2);
        }
        net.advance(60_000);
        steps += 1;
    }
    assert!(net.got(0, x), "fell back to the other provider");
    assert_eq!(net.received(0, x), 1);
}

#[test]
fn a_bad_block_disconnects_the_sender_and_the_block_comes_from_elsewhere() {
    let mut net = Net::new(3, &[(0, 1), (0, 2)]);
    let x = cid(5);
    net.routers[1].add_held(x);
    net.routers[2].add_held(x);
    net.liars.insert(1);
    net.advance(10_000);
    net.routers[0].want(net.now, x);
    net.pump();
    for _ in 0..5 {
        net.advance(30_000);
    }
    assert_eq!(net.disconnects, vec![(0, 1)]);
    assert!(net.got(0, x));
}

#[test]
fn cancel_clears_state_along_the_path() {
    let mut net = Net::new(4, &line(4));
    let x = cid(6);
    net.routers[0].want(net.now, x);
    net.pump();
    assert!(net.routers[1].wanted() == 1 && net.routers[3].wanted() == 1);
    net.routers[0].cancel(net.now, x);
    net.pump();
    assert!(net.routers.iter().all(|r| r.wanted() == 0));
}

#[test]
fn wants_do_not_circle_a_ring() {
    let ring: Vec<(usize, usize)> = (0..6).map(|i| (i, (i + 1) % 6)).collect();
    let mut net = Net::new(6, &ring);
    net.routers[0].want(net.now, cid(7));
    net.pump();
    let forwarded: u64 = net.routers.iter().map(|r| r.stats().wants_forwarded).sum();
    assert!(forwarded <= 12, "{forwarded} want messages on a 6-ring");
}

#[test]
fn a_want_flooder_is_bounded_and_honest_transfers_complete() {
    let cfg = RouterConfig { max_wants: 512, max_wants_per_neighbor: 64, ..RouterConfig::default() };
    // 1 is the victim relay between honest 0 and holder 2; 3 floods 1.
    let mut net = Net::with_config(4, &[(0, 1), (1, 2), (3, 1)], cfg);
    let x = cid(8);
    net.routers[2].add_held(x);
    for burst in 0..100u32 {
        let entries = (0..1000u32)
            .map(|i| WantEntry {
                cid: cid(1_000_000 + burst * 1000 + i),
                id: u64::from(burst * 1000 + i),
                hops_left: 6,
                ttl_ms: 120_000,
            })
            .collect();
        net.routers[1].handle(net.now, 3, Control::Want(entries));
        net.pump();
    }
    let victim: RouterStats = net.routers[1].stats();
    assert!(net.routers[1].wanted() <= 64 + 1, "table bounded: {}", net.routers[1].wanted());
    assert!(victim.wants_rate_limited > 90_000, "{victim:?}");
    net.routers[0].want(net.now, x);
    net.pump();
    assert!(net.got(0, x), "an honest want still gets through");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// On any connected graph, every want within the hop budget is satisfied and no node ever receives a block twice.
    #[test]
    fn connected_graphs_deliver_without_duplicates(
        n in 3usize..14,
        extra in proptest::collection::vec((0usize..14, 0usize..14), 0..20),
        holder_seed in any::<u64>(),
        wanters in proptest::collection::btree_set(0usize..14, 1..6),
    ) {
        let mut edges = line(n);
        edges.extend(extra.into_iter().filter(|(a, b)| a != b && *a < n && *b < n));
        // A hop budget longer than any path here: the property is delivery within the budget (a want spends one
        // hop per relay; `a_want_travels_no_further_than_its_hop_budget` pins the limit).
        let mut net = Net::with_config(n, &edges, RouterConfig { want_hops: 16, ..RouterConfig::default() });
        let x = cid(9);
        let holder = (holder_seed % n as u64) as usize;
        net.routers[holder].add_held(x);
        net.advance(10_000);
        let wanters: Vec<usize> = wanters.into_iter().filter(|w| *w < n && *w != holder).collect();
        for &w in &wanters {
            net.routers[w].want(net.now, x);
        }
        net.pump();
        for _ in 0..10 {
            net.advance(30_000);
        }
        for &w in &wanters {
            prop_assert!(net.got(w, x), "node {} never got the block", w);
        }
        let mut per_node: BTreeMap<usize, usize> = BTreeMap::new();
        for (_, to, _) in &net.transfers {
            *per_node.entry(*to).or_default() += 1;
        }
        prop_assert!(per_node.values().all(|c| *c == 1), "duplicate block: {:?}", per_node);
    }
}

#[test]
fn a_courier_carries_a_spray_copy_between_islands() {
    // 0 holds the block on island 1; 2 wants it on island 2; 1 is the courier. No path ever joins 0 and 2.
    let mut net = Net::new(3, &[]);
    let x = cid(10);
    net.routers[0].publish(x, 4);
    net.routers[2].want(net.now, x);
    net.pump();
    net.connect(0, 1);
    net.pump();
    assert!(net.routers[1].holds(&x), "the courier took a copy");
    assert_eq!(net.routers[0].spray_budget(&x), 2);
    assert_eq!(net.routers[1].spray_budget(&x), 2);
    net.disconnect(0, 1);
    net.advance(60_000);
    net.connect(1, 2);
    net.pump();
    assert!(net.got(2, x), "delivered with no end-to-end path");
    assert_eq!(net.received(2, x), 1);
}

#[test]
fn spray_stops_when_the_budget_is_spent() {
    let mut net = Net::new(4, &[]);
    let x = cid(11);
    net.routers[0].publish(x, 2);
    for peer in 1..4 {
        net.connect(0, peer);
        net.pump();
    }
    let carriers = (1..4).filter(|p| net.routers[*p].holds(&x)).count();
    assert_eq!(carriers, 1, "a budget of 2 hands out exactly one copy");
    assert!(net.routers[1].spray_budget(&x) <= 1);
}

#[test]
fn a_want_waiting_for_a_busy_provider_has_no_stale_deadline() {
    let cfg = RouterConfig { max_requests_per_neighbor: 1, ..RouterConfig::default() };
    let mut net = Net::with_config(2, &[(0, 1)], cfg);
    let (x, y) = (cid(12), cid(13));
    net.routers[1].add_held(x);
    net.routers[1].add_held(y);
    net.advance(40_000);
    // Hold the blocks back: both wants find provider 1, one gets its slot, the other waits.
    net.routers[0].want(net.now, x);
    net.routers[0].want(net.now, y);
    while net.routers[0].poll_action().is_some() {}
    // Past the re-flood interval, before the request times out: nothing is due, so nothing may look due.
    let later = net.now + 30_000;
    net.routers[0].handle_timeout(later);
    while net.routers[0].poll_action().is_some() {}
    let deadline = net.routers[0].poll_timeout().expect("the outstanding request has a deadline");
    assert!(deadline > later, "a deadline in the past would spin the driver");
}

#[test]
fn the_last_copy_moves_to_a_neighbour_that_met_the_requester() {
    // 0 carries the only copy; 1 met the requester 2 recently, 3 never did.
    let mut net = Net::new(4, &[]);
    let x = cid(14);
    net.routers[0].publish(x, 1);
    net.routers[2].want(net.now, x);
    net.connect(1, 2);
    net.pump();
    net.disconnect(1, 2);
    net.advance(5_000);
    net.connect(0, 3);
    net.pump();
    assert!(!net.routers[3].holds(&x), "a neighbour that knows nothing gets no copy");
    net.connect(0, 1);
    net.pump();
    assert!(net.routers[1].holds(&x), "the copy moved toward the requester");
    assert_eq!(net.routers[0].spray_budget(&x), 0, "custody moved with it");
    assert_eq!(net.routers[1].spray_budget(&x), 1);
    net.disconnect(0, 1);
    net.connect(1, 2);
    net.pump();
    assert!(net.got(2, x));
    assert_eq!(net.routers[2].spray_budget(&x), 0, "copies end at the node that wanted the block");
}

#[test]
fn a_relay_passes_on_only_what_is_left_of_a_want() {
    let cfg = RouterConfig { want_ttl_ms: 100_000, ..RouterConfig::default() };
    let mut net = Net::with_config(3, &[], cfg);
    let x = cid(15);
    net.routers[2].want(net.now, x);
    net.connect(1, 2);
    net.pump();
    net.disconnect(1, 2);
    net.now += 40_000;
    net.connect(0, 1);
    net.pump();
    assert_eq!(net.routers[0].wanted(), 1, "the want travelled on after its requester left");
    net.disconnect(0, 1);
    net.now += 61_000;
    net.advance(1);
    assert_eq!(net.routers[0].wanted(), 0, "it expired 100 s after the requester sent it, not later");
}

#[test]
fn a_node_that_does_not_relay_answers_only_for_what_it_holds() {
    let cfg = RouterConfig { relay: false, ..RouterConfig::default() };
    let mut net = Net::with_config(3, &line(3), cfg);
    let x = cid(16);
    net.routers[0].add_held(x);
    net.routers[2].want(net.now, x);
    net.pump();
    assert_eq!(net.routers[1].wanted(), 0);
    assert!(!net.got(2, x), "nobody relayed the want");
}

#[test]
fn a_want_travels_no_further_than_its_hop_budget() {
    let cfg = RouterConfig { want_hops: 2, ..RouterConfig::default() };
    let mut net = Net::with_config(5, &line(5), cfg);
    net.routers[0].want(net.now, cid(17));
    net.pump();
    let reached: Vec<usize> = (1..5).filter(|i| net.routers[*i].wanted() > 0).collect();
    assert_eq!(reached, vec![1, 2], "two hops from the requester, no further");
}

#[test]
fn a_done_notice_ends_custody_wherever_it_spreads() {
    let cfg = RouterConfig { done_ttl_ms: 3_600_000, ..RouterConfig::default() };
    let mut net = Net::with_config(5, &[], cfg);
    let x = cid(30);
    // 0 publishes with two copies and hands one to the courier 1.
    net.routers[0].publish(x, 2);
    net.connect(0, 1);
    net.pump();
    net.disconnect(0, 1);
    assert_eq!((net.routers[0].spray_budget(&x), net.routers[1].spray_budget(&x)), (1, 1));
    // 2 wants it and gets it from the courier: the courier hears at once that its copy is done.
    net.routers[2].want(net.now, x);
    net.connect(1, 2);
    net.pump();
    assert!(net.got(2, x));
    assert!(net.routers[1].is_done(&x) && net.routers[1].spray_budget(&x) == 0, "the courier's custody ended");
    assert!(net.routers[1].holds(&x), "the block stays, first in line for eviction");
    net.disconnect(1, 2);
    // The notice travels on with the courier, through a bystander, to the source.
    net.advance(60_000);
    net.connect(1, 3);
    net.pump();
    net.disconnect(1, 3);
    assert!(net.routers[3].is_done(&x) && !net.routers[3].holds(&x));
    net.connect(3, 0);
    net.pump();
    assert!(net.routers[0].is_done(&x) && net.routers[0].spray_budget(&x) == 0, "the source stops carrying it");
    net.disconnect(3, 0);
    // Nobody takes a copy of a done block any more.
    let mut carrier = Net::with_config(2, &[], RouterConfig { done_ttl_ms: 3_600_000, ..RouterConfig::default() });
    carrier.routers[0].publish(x, 4);
    carrier.routers[1] = std::mem::replace(&mut net.routers[3], Router::new(RouterConfig::default()));
    carrier.connect(0, 1);
    carrier.pump();
    assert!(!carrier.routers[1].holds(&x), "an offer of a done block is declined");
    assert_eq!(carrier.routers[0].spray_budget(&x), 0, "and the offerer hears the notice");
}

#[test]
fn done_notices_are_off_by_default_and_expire() {
    let mut net = Net::new(3, &[]);
    let x = cid(31);
    net.routers[0].add_held(x);
    net.routers[1].want(net.now, x);
    net.connect(0, 1);
    net.pump();
    assert!(net.got(1, x) && !net.routers[0].is_done(&x) && !net.routers[1].is_done(&x));

    let cfg = RouterConfig { done_ttl_ms: 10_000, ..RouterConfig::default() };
    let mut net = Net::with_config(3, &[], cfg);
    net.routers[0].add_held(x);
    net.routers[1].want(net.now, x);
    net.connect(0, 1);
    net.pump();
    assert!(net.routers[0].is_done(&x));
    net.now += 20_000;
    net.connect(1, 2);
    net.pump();
    assert!(!net.routers[2].is_done(&x), "a notice is passed on only while it lives");
}

#[test]
fn replicas_fill_only_spare_room_and_leave_custody_where_it_was() {
    let cfg = RouterConfig { replicas_per_custody: 1, ..RouterConfig::default() };
    let mut net = Net::with_config(4, &[], cfg);
    let x = cid(32);
    net.routers[0].publish(x, 1);
    net.routers[2].set_spare_room(1);
    net.connect(0, 1);
    net.pump();
    assert!(!net.routers[1].holds(&x), "no spare room: no replica");
    net.connect(0, 2);
    net.pump();
    assert!(net.routers[2].holds(&x), "spare room takes a replica");
    assert_eq!(net.routers[2].spray_budget(&x), 0, "a replica carries no custody");
    assert_eq!(net.routers[0].spray_budget(&x), 1, "the custodian keeps its copy");
    assert_eq!(net.received(2, x), 1);
    net.routers[3].set_spare_room(1);
    net.connect(0, 3);
    net.pump();
    assert!(!net.routers[3].holds(&x), "the custodian's replica budget is spent");
}

#[test]
fn spray_offers_go_out_newest_custody_first() {
    let mut r = Router::<usize>::new(RouterConfig::default());
    // The newer custody has the larger CID, so CID order would list it last.
    let (old, new) = if cid(40) < cid(41) { (cid(40), cid(41)) } else { (cid(41), cid(40)) };
    r.publish(old, 2);
    r.publish(new, 2);
    r.peer_connected(0, 1);
    let offered: Vec<Cid> = std::iter::from_fn(|| r.poll_action())
        .filter_map(|a| match a {
            Action::Send { msg: Control::Have(entries), .. } => Some(entries),
            _ => None,
        })
        .flatten()
        .map(|e| e.cid)
        .collect();
    assert_eq!(offered, vec![new, old]);
}

/// Control messages a lone router (no `Net`) queued for `to`, draining its actions.
fn sent_to(router: &mut Router<usize>, to: usize) -> Vec<Control> {
    let mut out = Vec::new();
    while let Some(action) = router.poll_action() {
        if let Action::Send { to: t, msg } = action {
            if t == to {
                out.push(msg);
            }
        }
    }
    out
}

fn requested(msgs: &[Control], x: Cid) -> bool {
    msgs.iter().any(|m| matches!(m, Control::Request(c) if c.iter().any(|e| e.cid == x)))
}

#[test]
fn crossing_requests_between_two_relays_are_refused_at_once() {
    // 0 and 1 each heard the other was near x, and each asked the other: neither holds it, so without the rule
    // both would wait for their request timeouts.
    let mut r = Router::new(RouterConfig::default());
    let x = cid(40);
    r.peer_connected(0, 1);
    r.want(0, x);
    r.handle(0, 1, Control::Have(vec![HaveEntry { cid: x, hops: 1, copies: 0 }]));
    assert!(requested(&sent_to(&mut r, 1), x), "asked its neighbour for x");
    r.handle(10, 1, Control::Request(vec![RequestEntry { cid: x, within: None }]));
    let answer = sent_to(&mut r, 1);
    assert!(answer.iter().any(|m| matches!(m, Control::DontHave(c) if c.contains(&x))), "{answer:?}");
    // Its DONT_HAVE to us ends our request too; with no other provider the want waits for its next flood.
    r.handle(10, 1, Control::DontHave(vec![x]));
    assert!(!requested(&sent_to(&mut r, 1), x), "did not ask the same neighbour again");
}

/// A lone router with neighbours 1 and 2 that relays 1's want for `x` (its first messages drained).
fn relaying_for_1(x: Cid) -> Router<usize> {
    let mut r = Router::new(RouterConfig::default());
    r.peer_connected(0, 1);
    r.peer_connected(0, 2);
    r.handle(0, 1, Control::Want(vec![WantEntry { cid: x, id: 5, hops_left: 3, ttl_ms: 60_000 }]));
    while r.poll_action().is_some() {}
    r
}

#[test]
fn a_neighbour_that_asked_for_a_block_is_not_asked_for_it() {
    // We relay 1's want for x; 1 and 2 both answer that they are near x, 1 by fewer hops. When 1 then asks us for
    // x, we fetch it from 2: 1 does not hold it, and asking 1 back would have both wait on each other.
    let x = cid(41);
    let mut r = relaying_for_1(x);
    r.handle(0, 1, Control::Have(vec![HaveEntry { cid: x, hops: 1, copies: 0 }]));
    r.handle(0, 2, Control::Have(vec![HaveEntry { cid: x, hops: 2, copies: 0 }]));
    while r.poll_action().is_some() {}
    r.handle(5, 1, Control::Request(vec![RequestEntry { cid: x, within: None }]));
    let (mut to_1, mut to_2) = (Vec::new(), Vec::new());
    while let Some(action) = r.poll_action() {
        match action {
            Action::Send { to: 1, msg } => to_1.push(msg),
            Action::Send { to: 2, msg } => to_2.push(msg),
            _ => {}
        }
    }
    assert!(requested(&to_2, x), "fetched from the other provider");
    assert!(!requested(&to_1, x), "asked the requester back");
}

#[test]
fn a_rewant_gets_past_relays_left_over_from_floods_that_crossed() {
    // 3's and 11's floods cross around 7, so every relay records both sides. 3 finds the block at 1 and cancels;
    // 4 drops its state, then 11's want comes back to it under 3's id (relays forward with their own flood id).
    // Dropped there as a loop, it would stall 11's want for good: the relays in between hold it as forwarded.
    let n = 12;
    let mut net = Net::with_config(n, &line(n), RouterConfig { want_hops: 16, ..RouterConfig::default() });
    let x = cid(42);
    net.routers[1].add_held(x);
    net.advance(10_000);
    let start = net.now;
    for w in [3, 11] {
        net.routers[w].want(net.now, x);
    }
    net.pump();
    assert!(net.got(3, x));
    while !net.got(11, x) && net.now < start + 60_000 {
        net.advance(30_000);
    }
    assert!(net.got(11, x), "11 still waiting after {} ms", net.now - start);
}

#[test]
fn a_neighbour_that_cancelled_hears_the_next_want() {
    // 2 was sent 1's want and CANCELled it (it dropped its state): a want from 3 for the same CID must reach 2
    // again, or a path through 2 stays unsearched while the want lives.
    let mut r = Router::new(RouterConfig::default());
    let x = cid(43);
    for p in 1..=3 {
        r.peer_connected(0, p);
    }
    r.handle(0, 1, Control::Want(vec![WantEntry { cid: x, id: 7, hops_left: 3, ttl_ms: 60_000 }]));
    assert!(sent_to(&mut r, 2).iter().any(|m| matches!(m, Control::Want(_))));
    r.handle(5, 2, Control::Cancel(vec![x]));
    r.handle(5, 3, Control::Want(vec![WantEntry { cid: x, id: 8, hops_left: 3, ttl_ms: 60_000 }]));
    let to_2 = sent_to(&mut r, 2);
    assert!(to_2.iter().any(|m| matches!(m, Control::Want(w) if w[0].cid == x)), "{to_2:?}");
}

fn dont_have(msgs: &[Control], x: Cid) -> bool {
    msgs.iter().any(|m| matches!(m, Control::DontHave(c) if c.contains(&x)))
}

#[test]
fn requests_around_a_triangle_of_stale_haves_end_at_once() {
    // 3 wants x through 0. 0, 1 and 2 each heard (stale news) that the next around the triangle is one hop from x:
    // requests would chase each other 0 → 1 → 2 → 0 until timeouts. Limits make 1 refuse at once.
    let mut net = Net::new(4, &[(0, 1), (1, 2), (2, 0), (3, 0)]);
    let x = cid(44);
    net.routers[3].want(net.now, x);
    net.pump();
    let stale = |hops| Control::Have(vec![HaveEntry { cid: x, hops, copies: 0 }]);
    net.routers[1].handle(net.now, 2, stale(1));
    net.routers[2].handle(net.now, 0, stale(1));
    net.routers[0].handle(net.now, 1, stale(1));
    net.pump();
    let waiting: Vec<usize> =
        (0..4).filter(|&i| net.routers[i].wants.get(&x).is_some_and(|s| s.fetch.is_some())).collect();
    assert!(waiting.is_empty(), "nodes waiting on requests nobody can answer: {waiting:?}");
    assert_eq!(net.routers.iter().map(|r| r.stats().request_timeouts).sum::<u64>(), 0);
}

#[test]
fn a_request_is_joined_only_by_a_fetch_closer_than_its_limit() {
    // We fetch x for ourselves from 1, which is two hops from it. 2 was told we are two hops away too: serving it
    // through 1 would not bring it closer (it could be a loop), so it is refused. 3 was told three: it waits.
    let mut r = Router::new(RouterConfig::default());
    let x = cid(45);
    for p in 1..=3 {
        r.peer_connected(0, p);
    }
    r.want(0, x);
    r.handle(0, 1, Control::Have(vec![HaveEntry { cid: x, hops: 2, copies: 0 }]));
    assert!(requested(&sent_to(&mut r, 1), x));
    r.handle(1, 2, Control::Request(vec![RequestEntry { cid: x, within: Some(2) }]));
    assert!(dont_have(&sent_to(&mut r, 2), x), "joined a fetch no closer than promised");
    r.handle(1, 3, Control::Request(vec![RequestEntry { cid: x, within: Some(3) }]));
    assert!(!dont_have(&sent_to(&mut r, 3), x), "refused a request it can serve");
    r.block_arrived(2, Some(1), x);
    let served: Vec<usize> = std::iter::from_fn(|| r.poll_action())
        .filter_map(|a| match a {
            Action::SendBlock { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(served, vec![3]);
}

#[test]
fn a_request_is_not_served_from_farther_than_its_limit() {
    // 1 was told (stale news) that we are one hop from x; we only know 2, two hops from it. Fetching from 2 would
    // pass on a request no closer than 1's: refuse instead, so request chains always shrink.
    let x = cid(46);
    let mut r = relaying_for_1(x);
    r.handle(0, 2, Control::Have(vec![HaveEntry { cid: x, hops: 2, copies: 0 }]));
    while r.poll_action().is_some() {}
    r.handle(1, 1, Control::Request(vec![RequestEntry { cid: x, within: Some(1) }]));
    let to_1 = sent_to(&mut r, 1);
    assert!(dont_have(&to_1, x), "{to_1:?}");
    r.handle(2, 1, Control::Request(vec![RequestEntry { cid: x, within: Some(3) }]));
    assert!(requested(&sent_to(&mut r, 2), x), "a request with room is served through 2");
}

#[test]
fn a_request_finds_a_provider_named_by_a_summary_that_came_after_the_want() {
    // We relayed 1's want before 2 told us (in its summary) that it holds x; 1 then asks us, one hop from x.
    let x = cid(47);
    let mut r = relaying_for_1(x);
    let mut own = Bloom::new(64, 3);
    own.insert(&x);
    r.handle(1, 2, Control::Summary { own, near: Bloom::new(64, 3) });
    while r.poll_action().is_some() {}
    r.handle(2, 1, Control::Request(vec![RequestEntry { cid: x, within: Some(1) }]));
    assert!(requested(&sent_to(&mut r, 2), x), "asked the holder the summary named");
}
