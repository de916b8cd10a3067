//! What the engine does with driver events and session events.

use libp2p_core::transport::TransportEvent;
use tokio::time::Instant;

use super::{Command, Core, LinkEntry, Seen, Sighting, StreamState, MAX_SIGHTINGS};
use crate::advert::{AdvertPayload, EphemeralId};
use crate::config::{ble_multiaddr, BleError};
use crate::driver::{DeviceId, DriverEvent, LinkId, Role};
use crate::session::{survives_duplicate, LinkError, LinkSession, SessionConfig, SessionEvent};

impl Core {
    pub(super) fn on_driver_event(&mut self, event: DriverEvent, now: Instant) {
        let now_std = now.into_std();
        match event {
            DriverEvent::AdvertisementSeen { device, rssi, service_data } => match AdvertPayload::decode(&service_data)
            {
                Ok(payload) => self.on_sighting(payload.ephemeral_id, device, rssi, now),
                Err(error) => tracing::trace!(%error, "ignoring advertisement"),
            },
            DriverEvent::Connected { link, device, role, att_mtu } => {
                self.on_connected(link, device, role, att_mtu, now)
            }
            DriverEvent::ConnectFailed { device, error } => {
                for dial in self.dials.remove(&device).unwrap_or_default() {
                    let _ = dial.tx.send(Err(BleError::Connect(error.clone())));
                }
            }
            DriverEvent::MtuChanged { link, att_mtu } => {
                if let Some(e) = self.links.get_mut(&link) {
                    e.session.handle_mtu(att_mtu);
                }
            }
            DriverEvent::L2capOpened { link, max_sdu } => {
                if let Some(e) = self.links.get_mut(&link) {
                    tracing::debug!(link = link.0, max_sdu, "L2CAP channel open");
                    e.session.handle_l2cap_opened(max_sdu);
                }
            }
            DriverEvent::L2capFailed { link, reason } => {
                tracing::debug!(link = link.0, %reason, "L2CAP unavailable, staying on GATT");
            }
            DriverEvent::Received { link, bearer, data } => {
                if let Some(e) = self.links.get_mut(&link) {
                    e.session.handle_received(now_std, bearer, &data);
                }
            }
            DriverEvent::SendReady { link, bearer } => {
                if let Some(e) = self.links.get_mut(&link) {
                    e.blocked[super::slot(bearer)] = false;
                }
            }
            DriverEvent::Disconnected { link, reason } => {
                if let Some(e) = self.links.get_mut(&link) {
                    tracing::debug!(link = link.0, ?reason, "link down");
                    e.link_up = false;
                    e.disconnect_at = None;
                    e.session.handle_disconnected();
                }
            }
        }
    }

    fn on_sighting(&mut self, id: EphemeralId, device: DeviceId, rssi: i16, now: Instant) {
        if id == self.ephemeral {
            return;
        }
        let interval = self.config.sighting_report_interval;
        let (new, report) = match self.seen.get_mut(&id) {
            Some(s) => {
                s.device = device;
                s.at = now;
                let due = now.saturating_duration_since(s.reported) >= interval;
                if due {
                    s.reported = now;
                }
                (false, due)
            }
            None => {
                if self.seen.len() >= MAX_SIGHTINGS {
                    if let Some(oldest) = self.seen.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| *k) {
                        self.seen.remove(&oldest);
                    }
                }
                self.seen.insert(id, Seen { device, at: now, reported: now });
                (true, true)
            }
        };
        if report && self.sightings.len() < MAX_SIGHTINGS {
            self.sightings.push_back(Sighting { address: ble_multiaddr(id), rssi, new });
            if let Some(w) = self.discovery_waker.take() {
                w.wake();
            }
        }
    }

    fn session_config(&self) -> SessionConfig {
        SessionConfig { l2cap: self.config.session.l2cap && self.caps.l2cap, ..self.config.session.clone() }
    }

    fn on_connected(&mut self, link: LinkId, device: DeviceId, role: Role, att_mtu: u16, now: Instant) {
        let wanted = match role {
            Role::Central => self.dials.get(&device).is_some_and(|d| !d.is_empty()),
            Role::Peripheral => self.listener.is_some(),
        };
        if !wanted || self.self_ref.strong_count() == 0 {
            tracing::debug!(link = link.0, ?role, "unsolicited link, disconnecting");
            self.commands.push_back(Command::Disconnect(link));
            return;
        }
        let mut session = LinkSession::new(role, self.ephemeral.0, att_mtu, self.session_config(), now.into_std());
        if let (Role::Peripheral, Some(psm)) = (role, self.psm) {
            session.offer_l2cap(psm);
        }
        self.links.insert(
            link,
            LinkEntry {
                session,
                device,
                role,
                local_nonce: self.ephemeral.0,
                remote_nonce: None,
                established_at: now,
                stream: StreamState::NotHandedOut,
                handle: None,
                read_waker: None,
                write_waker: None,
                stash: [None, None],
                blocked: [false, false],
                link_up: true,
                disconnect_at: None,
            },
        );
        if role == Role::Central {
            let mut dials = self.dials.remove(&device).unwrap_or_default().into_iter();
            if let Some((first, stream)) = dials.next().zip(self.new_stream(link)) {
                if first.tx.send(Ok(stream)).is_err() {
                    // The dial was abandoned: the stream came back and was dropped, which closes the link.
                    tracing::debug!(link = link.0, "dial abandoned before the link came up");
                }
            }
            for other in dials {
                let _ = other.tx.send(Err(BleError::AlreadyConnected));
            }
        }
    }

    pub(super) fn process_session_events(&mut self, now: Instant) {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in ids {
            while let Some(event) = self.links.get_mut(&id).and_then(|e| e.session.poll_event()) {
                self.on_session_event(id, event, now);
            }
        }
    }

    fn on_session_event(&mut self, id: LinkId, event: SessionEvent, now: Instant) {
        let Some(entry) = self.links.get_mut(&id) else {
            return;
        };
        match event {
            SessionEvent::PeerHello { nonce, .. } => {
                entry.remote_nonce = Some(nonce);
                let device = entry.device;
                self.seen.entry(EphemeralId(nonce)).or_insert(Seen { device, at: now, reported: now });
                self.dedupe(id);
                self.maybe_hand_out(id);
            }
            SessionEvent::L2capOffered { psm } => self.commands.push_back(Command::OpenL2cap(id, psm)),
            SessionEvent::Readable => wake(&mut entry.read_waker),
            SessionEvent::Writable => wake(&mut entry.write_waker),
            SessionEvent::Closed(result) => {
                tracing::debug!(link = id.0, ?result, "link session closed");
                wake(&mut entry.read_waker);
                wake(&mut entry.write_waker);
            }
        }
    }

    /// Resolves the simultaneous-connect race: of two links to the same peer, exactly one survives.
    fn dedupe(&mut self, id: LinkId) {
        let Some(me) = self.links.get(&id) else {
            return;
        };
        let (role, local, Some(remote)) = (me.role, me.local_nonce, me.remote_nonce) else {
            return;
        };
        let others: Vec<(LinkId, Role, u64)> = self
            .links
            .iter()
            .filter(|(&other, e)| other != id && e.remote_nonce == Some(remote) && !e.session.is_closed())
            .map(|(&other, e)| (other, e.role, e.local_nonce))
            .collect();
        for (other, other_role, other_local) in others {
            let loser = if other_role != role {
                if !survives_duplicate(role, local, remote) {
                    Some(id)
                } else if !survives_duplicate(other_role, other_local, remote) {
                    Some(other)
                } else {
                    None
                }
            } else if role == Role::Central {
                Some(id.max(other))
            } else {
                None
            };
            if let Some(loser) = loser {
                tracing::debug!(link = loser.0, "closing duplicate link");
                if let Some(e) = self.links.get_mut(&loser) {
                    e.session.abort(LinkError::Duplicate);
                }
            }
        }
    }

    fn maybe_hand_out(&mut self, id: LinkId) {
        let Some(listener_id) = self.listener else {
            return;
        };
        let Some(entry) = self.links.get_mut(&id) else {
            return;
        };
        if entry.stream != StreamState::NotHandedOut || entry.session.is_closed() {
            return;
        }
        let send_back_addr = ble_multiaddr(EphemeralId(entry.remote_nonce.unwrap_or_default()));
        let Some(stream) = self.new_stream(id) else {
            return;
        };
        let upgrade = futures::future::ready(Ok(stream));
        let local_addr = ble_multiaddr(self.ephemeral);
        self.push_transport_event(TransportEvent::Incoming { listener_id, upgrade, local_addr, send_back_addr });
    }
}

fn wake(waker: &mut Option<std::task::Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}
