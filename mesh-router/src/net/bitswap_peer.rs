//! Translation between the router's control messages and Bitswap 1.2.0, so ordinary IPFS nodes (Helia, kubo) are
//! neighbours like any other (`docs/want-gossip.md` §8).

use cid::Cid;

use crate::bitswap::{BitswapMessage, Presence, Want, WantType};
use crate::gossip::{Control, HaveEntry, RequestEntry, WantEntry};

/// The Bitswap message carrying a router control message, if Bitswap has an equivalent.
pub(super) fn to_bitswap(msg: &Control) -> Option<BitswapMessage> {
    let want =
        |cid: &Cid, want_type, cancel| Want { cid: *cid, priority: 1, cancel, want_type, send_dont_have: !cancel };
    let mut out = BitswapMessage::default();
    match msg {
        Control::Summary { .. } => return None,
        // A want with no lifetime left is a done notice (docs/want-gossip.md §6): Bitswap has no equivalent.
        Control::Want(entries) => {
            out.wants = entries.iter().filter(|w| w.ttl_ms > 0).map(|w| want(&w.cid, WantType::Have, false)).collect();
            if out.wants.is_empty() {
                return None;
            }
        }
        Control::Request(entries) => {
            out.wants = entries.iter().map(|e| want(&e.cid, WantType::Block, false)).collect();
        }
        Control::Cancel(cids) => out.wants = cids.iter().map(|c| want(c, WantType::Block, true)).collect(),
        Control::Have(entries) => out.presences = entries.iter().map(|h| (h.cid, Presence::Have)).collect(),
        Control::DontHave(cids) => out.presences = cids.iter().map(|c| (*c, Presence::DontHave)).collect(),
    }
    Some(out)
}

/// A Bitswap message for one block.
pub(super) fn block_message(cid: Cid, data: Vec<u8>) -> BitswapMessage {
    BitswapMessage { blocks: vec![(cid, data)], ..BitswapMessage::default() }
}

/// What a Bitswap message means to the router: control messages (want-have → WANT with the full hop budget,
/// want-block → REQUEST, cancel → CANCEL, presences → HAVE / DONT_HAVE) and the blocks it carried.
pub(super) fn from_bitswap(
    msg: BitswapMessage,
    mut want_id: impl FnMut(&Cid) -> u64,
    hops: u8,
    ttl_ms: u32,
) -> (Vec<Control>, Vec<(Cid, Vec<u8>)>) {
    let mut wants = Vec::new();
    let mut requests = Vec::new();
    let mut cancels = Vec::new();
    for w in msg.wants {
        match (w.cancel, w.want_type) {
            (true, _) => cancels.push(w.cid),
            (false, WantType::Have) => {
                wants.push(WantEntry { cid: w.cid, id: want_id(&w.cid), hops_left: hops, ttl_ms });
            }
            (false, WantType::Block) => requests.push(RequestEntry { cid: w.cid, within: None }),
        }
    }
    let mut haves = Vec::new();
    let mut dont_haves = Vec::new();
    for (cid, presence) in msg.presences {
        match presence {
            Presence::Have => haves.push(HaveEntry { cid, hops: 0, copies: 0 }),
            Presence::DontHave => dont_haves.push(cid),
        }
    }
    let controls = [
        (!cancels.is_empty()).then_some(Control::Cancel(cancels)),
        (!wants.is_empty()).then_some(Control::Want(wants)),
        (!requests.is_empty()).then_some(Control::Request(requests)),
        (!haves.is_empty()).then_some(Control::Have(haves)),
        (!dont_haves.is_empty()).then_some(Control::DontHave(dont_haves)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (controls, msg.blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unixfs::{cid_v1_sha256, RAW_CODEC};

    #[test]
    fn round_trips_the_translatable_messages() {
        let c = cid_v1_sha256(RAW_CODEC, b"x");
        for msg in [
            Control::Request(vec![RequestEntry { cid: c, within: None }]),
            Control::Cancel(vec![c]),
            Control::Have(vec![HaveEntry { cid: c, hops: 0, copies: 0 }]),
            Control::DontHave(vec![c]),
        ] {
            let bitswap = to_bitswap(&msg).unwrap();
            let (back, blocks) = from_bitswap(bitswap, |_| 7, 6, 1000);
            assert_eq!(back, vec![msg]);
            assert!(blocks.is_empty());
        }
        let want = Control::Want(vec![WantEntry { cid: c, id: 9, hops_left: 3, ttl_ms: 5 }]);
        let (back, _) = from_bitswap(to_bitswap(&want).unwrap(), |_| 42, 6, 1000);
        assert_eq!(back, vec![Control::Want(vec![WantEntry { cid: c, id: 42, hops_left: 6, ttl_ms: 1000 }])]);
        assert!(to_bitswap(&Control::Summary { own: Default::default(), near: Default::default() }).is_none());
    }

    #[test]
    fn done_notices_never_reach_bitswap_peers() {
        let (a, b) = (cid_v1_sha256(RAW_CODEC, b"a"), cid_v1_sha256(RAW_CODEC, b"b"));
        let done = |cid| WantEntry { cid, id: 1, hops_left: 3, ttl_ms: 0 };
        assert!(to_bitswap(&Control::Want(vec![done(a)])).is_none());
        let mixed = to_bitswap(&Control::Want(vec![done(a), WantEntry { ttl_ms: 5, ..done(b) }])).unwrap();
        assert_eq!(mixed.wants.iter().map(|w| w.cid).collect::<Vec<_>>(), vec![b]);
    }
}
