//! Bitswap codec: hand-derived byte vectors, round-trip proptests, framing,
//! caps, and garbage that must never panic.
//!
//! How the byte vectors were derived: each protobuf field is a key byte
//! `(field_number << 3) | wire_type` (wire type 0 = varint, 2 = length-
//! delimited) followed by a varint value or a varint length and the bytes.
//! Field numbers come from boxo's `bitswap/message/pb/message.proto`
//! (Message: wantlist=1, blocks=2, payload=3, blockPresences=4,
//! pendingBytes=5; Wantlist: entries=1, full=2; Entry: block=1, priority=2,
//! cancel=3, wantType=4, sendDontHave=5; Block: prefix=1, data=2;
//! BlockPresence: cid=1, type=2). proto3 omits fields at their default
//! (false, 0, Block, Have). The CID strings were cross-checked with the npm
//! `multiformats` package.

// Test helpers outside #[test] fns panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cid::Cid;
use multihash::Multihash;
use pollen_router::bitswap::{
    encode_frame, BitswapError, BitswapMessage, FrameDecoder, Presence, Want, WantType, MAX_BLOCKS_PER_MESSAGE,
    MAX_MESSAGE_SIZE, MAX_WANTS_PER_MESSAGE,
};
use pollen_router::unixfs::{cid_v1_sha256, sha256_multihash, DAG_PB_CODEC, RAW_CODEC};
use proptest::prelude::*;

/// CIDv1 raw sha2-256 of the empty string (bafkreihdwdcef...).
const EMPTY_RAW_CID: [u8; 36] = [
    0x01, 0x55, 0x12, 0x20, 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
    0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

fn empty_cid() -> Cid {
    Cid::try_from(&EMPTY_RAW_CID[..]).unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Checks `bytes` decodes to `msg` and `msg` encodes to `bytes`.
fn both_ways(msg: &BitswapMessage, bytes: &[u8]) {
    assert_eq!(BitswapMessage::decode(bytes).unwrap(), *msg);
    assert_eq!(msg.encode().unwrap(), bytes);
}

#[test]
fn vector_want_have() {
    let msg = BitswapMessage {
        wants: vec![Want {
            cid: empty_cid(),
            priority: 1,
            cancel: false,
            want_type: WantType::Have,
            send_dont_have: true,
        }],
        ..Default::default()
    };
    // Entry: block (1, LEN 36), priority (2, 1), wantType (4, Have=1),
    // sendDontHave (5, true) = 38 + 2 + 2 + 2 = 44 bytes.
    let entry = cat(&[&[0x0a, 36], &EMPTY_RAW_CID, &[0x10, 0x01, 0x20, 0x01, 0x28, 0x01]]);
    assert_eq!(entry.len(), 44);
    // Wantlist: entries (1, LEN 44) = 46 bytes; Message: wantlist (1, LEN 46).
    let bytes = cat(&[&[0x0a, 46, 0x0a, 44], &entry]);
    assert_eq!(bytes.len(), 48);
    both_ways(&msg, &bytes);
    // Framed: varint(48) = 0x30, then the body.
    assert_eq!(msg.encode_framed().unwrap(), cat(&[&[0x30], &bytes]));
}

#[test]
fn vector_cancel_full_wantlist() {
    let msg = BitswapMessage {
        wants: vec![Want {
            cid: empty_cid(),
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }],
        full: true,
        ..Default::default()
    };
    // Entry: block (1, LEN 36), cancel (3, true) = 40 bytes.
    // Wantlist: entries (1, LEN 40), full (2, true) = 44 bytes.
    let bytes = cat(&[&[0x0a, 44, 0x0a, 40, 0x0a, 36], &EMPTY_RAW_CID, &[0x18, 0x01, 0x10, 0x01]]);
    both_ways(&msg, &bytes);
}

#[test]
fn vector_payload_block() {
    let cid: Cid = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq".parse().unwrap();
    let msg = BitswapMessage { blocks: vec![(cid, b"hello".to_vec())], ..Default::default() };
    // Block: prefix (1, LEN 4: v1, raw 0x55, sha2-256 0x12, 32 bytes),
    // data (2, LEN 5) = 13 bytes; Message: payload (3, LEN 13).
    let bytes = cat(&[&[0x1a, 13, 0x0a, 4, 0x01, 0x55, 0x12, 0x20, 0x12, 5], b"hello"]);
    both_ways(&msg, &bytes);
}

#[test]
fn vector_presence_and_pending_bytes() {
    let msg = BitswapMessage {
        presences: vec![(empty_cid(), Presence::DontHave), (empty_cid(), Presence::Have)],
        pending_bytes: 1000,
        ..Default::default()
    };
    // Presence: cid (1, LEN 36), type (2, DontHave=1) = 40 bytes; Have is the
    // default and omitted = 38 bytes. pendingBytes (5, varint 1000 = e8 07).
    let bytes = cat(&[
        &[0x22, 40, 0x0a, 36],
        &EMPTY_RAW_CID,
        &[0x10, 0x01],
        &[0x22, 38, 0x0a, 36],
        &EMPTY_RAW_CID,
        &[0x28, 0xe8, 0x07],
    ]);
    both_ways(&msg, &bytes);
}

#[test]
fn vector_v0_blocks() {
    let v0: Cid = "QmRN6wdp1S2A5EtjW9A3M1vKSBuQQGcgvuhoMUoEz4iiT5".parse().unwrap();
    // Bitswap 1.0.0 `blocks` (2, LEN 5): implicitly CIDv0.
    let old = BitswapMessage::decode(&cat(&[&[0x12, 5], b"hello"])).unwrap();
    assert_eq!(old.blocks, vec![(v0, b"hello".to_vec())]);
    // The same block as a 1.1.0 payload with a CIDv0 prefix: 00 70 12 20.
    let bytes = cat(&[&[0x1a, 13, 0x0a, 4, 0x00, 0x70, 0x12, 0x20, 0x12, 5], b"hello"]);
    let msg = BitswapMessage { blocks: vec![(v0, b"hello".to_vec())], ..Default::default() };
    both_ways(&msg, &bytes);
}

#[test]
fn empty_message_is_empty_bytes() {
    both_ways(&BitswapMessage::default(), &[]);
    assert_eq!(BitswapMessage::default().encode_framed().unwrap(), [0x00]);
}

#[test]
fn invalid_fields_are_typed_errors() {
    let decode = |b: &[u8]| BitswapMessage::decode(b).unwrap_err();
    // Want entry whose block is not a CID.
    assert!(matches!(
        decode(&[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff]),
        BitswapError::InvalidCid { field: "wantlist entry", index: 0 }
    ));
    // CID followed by a stray byte.
    let bytes = cat(&[&[0x22, 39, 0x0a, 37], &EMPTY_RAW_CID, &[0x00]]);
    assert!(matches!(decode(&bytes), BitswapError::InvalidCid { field: "block presence", .. }));
    // wantType 7.
    let bytes = cat(&[&[0x0a, 42, 0x0a, 40, 0x0a, 36], &EMPTY_RAW_CID, &[0x20, 0x07]]);
    assert!(matches!(decode(&bytes), BitswapError::UnknownWantType(7)));
    // presence type 2.
    let bytes = cat(&[&[0x22, 40, 0x0a, 36], &EMPTY_RAW_CID, &[0x10, 0x02]]);
    assert!(matches!(decode(&bytes), BitswapError::UnknownPresenceType(2)));
    // Prefixes: trailing byte, version 2, v0 with a non-dag-pb codec,
    // non-minimal varint, and an unsupported hash.
    for prefix in [
        &[0x01, 0x55, 0x12, 0x20, 0x00][..],
        &[0x02, 0x55, 0x12, 0x20],
        &[0x00, 0x55, 0x12, 0x20],
        &[0x81, 0x00, 0x55, 0x12, 0x20],
        &[0x01, 0x55],
    ] {
        let block = cat(&[&[0x0a, prefix.len() as u8], prefix, &[0x12, 0x01, 0x00]]);
        let bytes = cat(&[&[0x1a, block.len() as u8], &block]);
        assert!(matches!(decode(&bytes), BitswapError::InvalidPrefix { index: 0 }), "prefix {prefix:02x?}");
    }
    let bytes = [0x1a, 0x09, 0x0a, 0x04, 0x01, 0x55, 0x1e, 0x20, 0x12, 0x01, 0x00];
    assert!(matches!(decode(&bytes), BitswapError::UnsupportedHash { code: 0x1e, size: 32 }));
    // Not protobuf at all.
    assert!(matches!(decode(&[0x0a, 0x05]), BitswapError::MalformedWire(_)));
}

#[test]
fn encoding_refuses_unsendable_blocks() {
    let blake3 = Cid::new_v1(RAW_CODEC, Multihash::wrap(0x1e, &[0; 32]).unwrap());
    let msg = BitswapMessage { blocks: vec![(blake3, vec![1])], ..Default::default() };
    assert!(matches!(msg.encode(), Err(BitswapError::UnsupportedHash { code: 0x1e, .. })));
}

#[test]
fn caps_are_enforced_both_ways() {
    let want = Want { cid: empty_cid(), priority: 1, cancel: false, want_type: WantType::Block, send_dont_have: false };
    let msg = BitswapMessage { wants: vec![want; MAX_WANTS_PER_MESSAGE + 1], ..Default::default() };
    assert!(matches!(msg.encode(), Err(BitswapError::TooManyItems { .. })));

    // A cheap attack: many empty entries (`0a 00`), spread over two
    // wantlist fields that protobuf would merge.
    let entries = [0x0a, 0x00].repeat(MAX_WANTS_PER_MESSAGE / 2 + 1);
    let mut body = Vec::new();
    for _ in 0..2 {
        body.push(0x0a);
        let mut buf = unsigned_varint::encode::usize_buffer();
        body.extend_from_slice(unsigned_varint::encode::usize(entries.len(), &mut buf));
        body.extend_from_slice(&entries);
    }
    assert!(matches!(BitswapMessage::decode(&body), Err(BitswapError::TooManyItems { field: "wantlist entries", .. })));
    // Empty 1.0.0 blocks (`12 00`).
    let body = [0x12, 0x00].repeat(MAX_BLOCKS_PER_MESSAGE + 1);
    assert!(matches!(BitswapMessage::decode(&body), Err(BitswapError::TooManyItems { field: "blocks", .. })));
    // Size.
    let big = BitswapMessage {
        blocks: vec![(cid_v1_sha256(RAW_CODEC, &[]), vec![0; MAX_MESSAGE_SIZE])],
        ..Default::default()
    };
    assert!(matches!(big.encode(), Err(BitswapError::MessageTooLarge { .. })));
    assert!(matches!(
        BitswapMessage::decode(&vec![0; MAX_MESSAGE_SIZE + 1]),
        Err(BitswapError::MessageTooLarge { .. })
    ));
}

#[test]
fn framing_limits() {
    // Prefix announcing 4 MiB + 1 is refused before any body arrives.
    let mut dec = FrameDecoder::new();
    let mut buf = unsigned_varint::encode::usize_buffer();
    dec.push(unsigned_varint::encode::usize(MAX_MESSAGE_SIZE + 1, &mut buf));
    assert!(matches!(dec.next_frame(), Err(BitswapError::MessageTooLarge { .. })));
    // Exactly the limit is fine (and incomplete until the body arrives).
    let mut dec = FrameDecoder::new();
    dec.push(unsigned_varint::encode::usize(MAX_MESSAGE_SIZE, &mut buf));
    assert!(dec.next_frame().unwrap().is_none());
    assert!(matches!(dec.finish(), Err(BitswapError::TruncatedFrame { .. })));
    // Non-minimal and endless varints.
    let mut dec = FrameDecoder::new();
    dec.push(&[0x80, 0x00]);
    assert!(matches!(dec.next_frame(), Err(BitswapError::LengthPrefix(_))));
    let mut dec = FrameDecoder::new();
    dec.push(&[0xff; 10]);
    assert!(matches!(dec.next_frame(), Err(BitswapError::LengthPrefix(_))));
    // Oversized bodies are not framed.
    assert!(encode_frame(&vec![0; MAX_MESSAGE_SIZE + 1], &mut Vec::new()).is_err());
}

fn arb_cid() -> impl Strategy<Value = Cid> {
    (
        proptest::collection::vec(any::<u8>(), 0..64),
        prop_oneof![Just(0u64), Just(RAW_CODEC), Just(DAG_PB_CODEC), Just(0x71u64), 0u64..1 << 40],
    )
        .prop_map(|(seed, codec)| {
            if codec == 0 {
                Cid::new_v0(sha256_multihash(&seed)).unwrap()
            } else {
                Cid::new_v1(codec, sha256_multihash(&seed))
            }
        })
}

fn arb_message() -> impl Strategy<Value = BitswapMessage> {
    let want = (arb_cid(), any::<i32>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(cid, priority, cancel, have, send_dont_have)| Want {
            cid,
            priority,
            cancel,
            want_type: if have { WantType::Have } else { WantType::Block },
            send_dont_have,
        },
    );
    // Blocks must hash to their CIDs: the decoder recomputes them.
    let block = (
        proptest::collection::vec(any::<u8>(), 0..200),
        prop_oneof![Just(0u64), Just(RAW_CODEC), Just(DAG_PB_CODEC), 1u64..1 << 40],
    )
        .prop_map(|(data, codec)| {
            let cid =
                if codec == 0 { Cid::new_v0(sha256_multihash(&data)).unwrap() } else { cid_v1_sha256(codec, &data) };
            (cid, data)
        });
    let presence =
        (arb_cid(), any::<bool>()).prop_map(|(c, h)| (c, if h { Presence::Have } else { Presence::DontHave }));
    (
        proptest::collection::vec(want, 0..8),
        any::<bool>(),
        proptest::collection::vec(block, 0..4),
        proptest::collection::vec(presence, 0..8),
        any::<i32>(),
    )
        .prop_map(|(wants, full, blocks, presences, pending_bytes)| BitswapMessage {
            wants,
            full,
            blocks,
            presences,
            pending_bytes,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trips(msg in arb_message()) {
        let body = msg.encode().unwrap();
        prop_assert_eq!(BitswapMessage::decode(&body).unwrap(), msg);
    }

    /// Several frames, delivered split at arbitrary points, come out whole
    /// and in order.
    #[test]
    fn frames_survive_any_split(
        msgs in proptest::collection::vec(arb_message(), 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(m.encode_framed().unwrap());
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts {
            dec.push(&stream[at..cut]);
            at = cut;
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
            }
        }
        dec.finish().unwrap();
        prop_assert_eq!(got, msgs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = BitswapMessage::decode(&bytes);
        let mut dec = FrameDecoder::with_max_size(1024);
        dec.push(&bytes);
        while let Ok(Some(_)) = dec.next_message() {}
    }

    /// Valid messages with a few bytes flipped: decode may fail, but any
    /// block it returns still hashes to its CID.
    #[test]
    fn mutated_messages_never_panic(
        msg in arb_message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut body = msg.encode().unwrap();
        if body.is_empty() {
            return Ok(());
        }
        for (at, x) in flips {
            let i = at.index(body.len());
            body[i] ^= x;
        }
        if let Ok(decoded) = BitswapMessage::decode(&body) {
            for (cid, data) in decoded.blocks {
                let expected = sha256_multihash(&data);
                prop_assert_eq!(cid.hash().digest(), expected.digest());
            }
        }
    }
}
