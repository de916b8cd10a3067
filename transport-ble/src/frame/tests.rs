use super::*;
use proptest::prelude::*;

fn arb_control() -> impl Strategy<Value = Control> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u64>(), any::<u32>(), any::<u16>()).prop_map(
            |(version, flags, nonce, window, att_mtu)| Control::Hello(Hello { version, flags, nonce, window, att_mtu })
        ),
        any::<u32>().prop_map(|increment| Control::Credit { increment }),
        Just(Control::Ping),
        any::<u8>().prop_map(|c| Control::Close { reason: CloseReason::from_code(c) }),
        any::<u16>().prop_map(|psm| Control::L2capOffer { psm }),
        Just(Control::Switch),
        any::<u16>().prop_map(|att_mtu| Control::Mtu { att_mtu }),
    ]
}

#[test]
fn header_layout_is_kind_seq_len() {
    let h = FrameHeader { kind: FrameKind::Control, seq: 5, len: 0x123 };
    assert_eq!(h.encode(), [0x80 | (5 << 2) | 0x01, 0x23]);
    assert_eq!(FrameHeader::decode(h.encode()), h);
    let d = FrameHeader { kind: FrameKind::Data, seq: 31, len: 1023 };
    assert_eq!(d.encode(), [0x7f, 0xff]);
}

#[test]
fn hello_fits_the_smallest_att_payload() {
    let hello = Control::Hello(Hello { version: 1, flags: 0, nonce: 0, window: 0, att_mtu: 0 });
    // ATT MTU 23 leaves 20 bytes per write.
    assert!(HEADER_LEN + hello.encoded_len() <= 20);
}

#[test]
fn gatt_value_must_hold_exactly_one_frame() {
    let mut v = Vec::new();
    put_frame(&mut v, FrameKind::Data, 3, b"hello");
    assert_eq!(decode_gatt_value(&v).unwrap().1, b"hello");
    assert_eq!(decode_gatt_value(&v[..5]), Err(FrameError::Truncated { declared: 5, actual: 3 }));
    v.push(0);
    assert_eq!(decode_gatt_value(&v), Err(FrameError::TrailingBytes { extra: 1 }));
    assert_eq!(decode_gatt_value(&[0x80]), Err(FrameError::ShortHeader(1)));
}

#[test]
fn control_errors_are_typed() {
    assert_eq!(Control::decode(&[]), Err(FrameError::EmptyControl));
    assert_eq!(Control::decode(&[0x7f]), Err(FrameError::UnknownControl(0x7f)));
    assert_eq!(Control::decode(&[T_CREDIT, 1, 2]), Err(FrameError::BadControlLength { kind: T_CREDIT, len: 2 }));
    assert_eq!(Control::decode(&[T_PING, 0]), Err(FrameError::BadControlLength { kind: T_PING, len: 1 }));
}

proptest! {
    #[test]
    fn header_roundtrips(kind: bool, seq in 0u8..32, len in 0u16..=1023) {
        let kind = if kind { FrameKind::Control } else { FrameKind::Data };
        let h = FrameHeader { kind, seq, len };
        prop_assert_eq!(FrameHeader::decode(h.encode()), h);
    }

    #[test]
    fn control_roundtrips(c in arb_control()) {
        let mut body = Vec::new();
        c.encode(&mut body);
        prop_assert_eq!(body.len(), c.encoded_len());
        prop_assert_eq!(Control::decode(&body), Ok(c));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = decode_gatt_value(&bytes);
        let _ = Control::decode(&bytes);
        let mut d = StreamDecoder::default();
        let _ = d.push(&bytes);
        prop_assert!(d.buffered() <= HEADER_LEN + MAX_PAYLOAD);
    }

    /// However the L2CAP stream is chunked, the decoder yields the same frames.
    #[test]
    fn stream_decoder_is_chunking_invariant(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
        cuts in proptest::collection::vec(1usize..700, 1..40),
    ) {
        let mut wire = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            put_frame(&mut wire, FrameKind::Data, i as u8, p);
        }
        let mut d = StreamDecoder::default();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let n = (*cut).min(rest.len());
            got.extend(d.push(&rest[..n]));
            rest = &rest[n..];
        }
        prop_assert_eq!(d.buffered(), 0);
        prop_assert_eq!(got.len(), payloads.len());
        for (i, ((h, body), p)) in got.iter().zip(&payloads).enumerate() {
            prop_assert_eq!(h.seq, i as u8 % SEQ_MODULUS);
            prop_assert_eq!(&body[..], &p[..]);
        }
    }
}

/// The test vectors printed in `docs/ble-link.md` §9.
#[test]
fn spec_test_vectors() {
    let mut v = Vec::new();
    let hello =
        Hello { version: 1, flags: Hello::FLAG_L2CAP, nonce: 0x0102_0304_0506_0708, window: 32768, att_mtu: 247 };
    put_control(&mut v, 0, &Control::Hello(hello));
    assert_eq!(
        v,
        [
            0x80, 0x11, 0x01, 0x01, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x80, 0x00, 0x00,
            0xf7
        ]
    );
    let mut v = Vec::new();
    put_frame(&mut v, FrameKind::Data, 1, b"abc");
    assert_eq!(v, [0x04, 0x03, 0x61, 0x62, 0x63]);
    let mut v = Vec::new();
    put_control(&mut v, 2, &Control::Credit { increment: 8192 });
    assert_eq!(v, [0x88, 0x05, 0x02, 0x00, 0x00, 0x20, 0x00]);
    let mut v = Vec::new();
    put_control(&mut v, 3, &Control::Close { reason: CloseReason::Duplicate });
    assert_eq!(v, [0x8c, 0x02, 0x04, 0x01]);
    let mut v = Vec::new();
    put_control(&mut v, 4, &Control::L2capOffer { psm: 0x0080 });
    assert_eq!(v, [0x90, 0x03, 0x05, 0x00, 0x80]);
}
