//! Per-link I/O: non-blocking GATT sends, the L2CAP send queue, and the reader tasks that turn sockets into events.

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluer::gatt::remote::CharacteristicWriteRequest;
use bluer::gatt::WriteOp;
use bluer::gatt::{CharacteristicReader, CharacteristicWriter};
use bluer::l2cap::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{lock, LinkTx, Shared, L2CAP_QUEUE};
use crate::driver::{Bearer, DisconnectReason, DriverEvent, LinkId, SendError};

/// Largest chunk handed up from an L2CAP read.
const L2CAP_READ: usize = 4096;

/// Sends one GATT value on the link's fd; on a full socket, reports busy and arranges one `SendReady`.
///
/// A central's first value on a link whose peer takes Write Requests goes out as one (see the module notes on the
/// BlueZ peripheral's write acquisition); later values wait until it is acknowledged and the write socket acquired.
pub(super) fn send_gatt(
    shared: &Arc<Mutex<Shared>>,
    link: LinkId,
    tx: &mut LinkTx,
    data: &[u8],
    events: &mpsc::UnboundedSender<DriverEvent>,
) -> Result<(), SendError> {
    if tx.first_write_busy {
        // The first write's task sends `SendReady` when it is done.
        return Err(SendError::Busy);
    }
    if let Some(rx) = tx.first_write.take() {
        tx.first_write_busy = true;
        let task = tokio::spawn(first_write(shared.clone(), link, rx, data.to_vec(), events.clone()));
        tx.tasks.push(task.abort_handle());
        return Ok(());
    }
    let writer = tx.gatt.clone().ok_or(SendError::NoSuchLink)?;
    if data.len() > writer.mtu() {
        return Err(SendError::TooLarge { len: data.len(), max: writer.mtu() });
    }
    match writer.try_send(data) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            if !tx.waiting[0] {
                tx.waiting[0] = true;
                let events = events.clone();
                tokio::spawn(async move {
                    if writer.sendable().await.is_ok() {
                        let _ = events.send(DriverEvent::SendReady { link, bearer: Bearer::Gatt });
                    }
                });
            }
            Err(SendError::Busy)
        }
        Err(e) => Err(SendError::Platform(e.to_string())),
    }
}

/// Writes a central's first value with a Write Request, then acquires the write socket for every later value.
/// bluetoothd refuses `WriteValue` while the socket is acquired, hence this order.
async fn first_write(
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    rx: bluer::gatt::remote::Characteristic,
    value: Vec<u8>,
    events: mpsc::UnboundedSender<DriverEvent>,
) {
    let request = CharacteristicWriteRequest { op_type: WriteOp::Request, ..Default::default() };
    let result = async {
        rx.write_ext(&value, &request).await?;
        rx.write_io().await
    }
    .await;
    match result {
        Ok(writer) => {
            if let Some(tx) = lock(&shared).links.get_mut(&link) {
                tx.gatt = Some(Arc::new(writer));
                tx.first_write_busy = false;
            }
            let _ = events.send(DriverEvent::SendReady { link, bearer: Bearer::Gatt });
        }
        Err(error) => {
            tracing::debug!(link = link.0, %error, "first GATT write failed");
            link_down(&shared, link, DisconnectReason::Other(format!("first GATT write: {error}")), &events);
        }
    }
}

/// Queues one SDU for the link's L2CAP writer task.
pub(super) fn send_l2cap(
    link: LinkId,
    tx: &mut LinkTx,
    data: &[u8],
    events: &mpsc::UnboundedSender<DriverEvent>,
) -> Result<(), SendError> {
    let queue = tx.l2cap.clone().ok_or(SendError::NoSuchLink)?;
    match queue.try_send(data.to_vec()) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => {
            if !tx.waiting[1] {
                tx.waiting[1] = true;
                let events = events.clone();
                tokio::spawn(async move {
                    if queue.reserve().await.is_ok() {
                        let _ = events.send(DriverEvent::SendReady { link, bearer: Bearer::L2capCoc });
                    }
                });
            }
            Err(SendError::Busy)
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::NoSuchLink),
    }
}

/// Clears the busy flag once the worker delivered the `SendReady` (called when the event is observed).
pub(super) fn ready(shared: &Mutex<Shared>, link: LinkId, bearer: Bearer) {
    if let Some(tx) = lock(shared).links.get_mut(&link) {
        tx.waiting[usize::from(bearer == Bearer::L2capCoc)] = false;
    }
}

/// Ends a link once: removes it and reports why.
pub(super) fn link_down(
    shared: &Mutex<Shared>,
    link: LinkId,
    reason: DisconnectReason,
    events: &mpsc::UnboundedSender<DriverEvent>,
) {
    if lock(shared).links.remove(&link).is_some() {
        let _ = events.send(DriverEvent::Disconnected { link, reason });
    }
}

/// Largest ATT value (MTU 517 − 3), with room to spare.
const GATT_READ: usize = 1024;

/// Turns a GATT reader (writes from the central, or notifications from the peripheral) into `Received` events.
///
/// bluer's `recv()` sizes its buffer from the MTU BlueZ reported when it created the I/O session; a central's first
/// write can create that session before the MTU exchange reached the peripheral's view (MTU 23), after which every
/// longer value would be cut short by our own read. Reading through `AsyncRead` into a full-size buffer receives
/// each datagram whole.
pub(super) fn spawn_gatt_reader(
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    mut reader: CharacteristicReader,
    events: mpsc::UnboundedSender<DriverEvent>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut buf = vec![0u8; GATT_READ];
        loop {
            match reader.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    let data = bytes::Bytes::copy_from_slice(&buf[..n]);
                    // Once the driver is gone this only drains: a dropped driver keeps its peripheral links' readers
                    // open for a while (see `BluezDriver`'s drop), and its link table aborts this task.
                    let _ = events.send(DriverEvent::Received { link, bearer: Bearer::Gatt, data });
                }
                // A zero-length datagram is how the fd reports its peer gone.
                Ok(_) | Err(_) => {
                    link_down(&shared, link, DisconnectReason::Remote, &events);
                    return;
                }
            }
        }
    })
    .abort_handle()
}

/// Watches a notification writer: when BlueZ closes it, the central unsubscribed or went away.
pub(super) fn spawn_writer_watch(
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    writer: Arc<CharacteristicWriter>,
    events: mpsc::UnboundedSender<DriverEvent>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let _ = writer.closed().await;
        link_down(&shared, link, DisconnectReason::Remote, &events);
    })
    .abort_handle()
}

/// How long [`send_mtu`] keeps asking the kernel for a new channel's send MTU, and how often.
const SEND_MTU_WAIT: Duration = Duration::from_secs(2);
const SEND_MTU_POLL: Duration = Duration::from_millis(20);
/// The smallest SDU an LE credit-based channel must take (Core spec, LE CoC minimum MTU).
const MIN_LE_COC_MTU: usize = 23;

/// The largest SDU the peer takes on a new channel. Linux can answer `BT_SNDMTU` with an error for a moment after the
/// channel is up (bluer documents it); taking the minimum then cut a whole 4 MiB transfer into 23-byte SDUs, at a
/// twentieth of the speed (seen in the virtual lab). So ask again until the kernel knows.
async fn send_mtu(stream: &Stream) -> usize {
    let deadline = tokio::time::Instant::now() + SEND_MTU_WAIT;
    loop {
        match stream.as_ref().send_mtu() {
            Ok(mtu) => return usize::from(mtu).max(MIN_LE_COC_MTU),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(%error, "the L2CAP channel's send MTU stayed unknown; sending minimum-size SDUs");
                return MIN_LE_COC_MTU;
            }
            Err(error) => tracing::debug!(%error, "L2CAP send MTU not known yet"),
        }
        tokio::time::sleep(SEND_MTU_POLL).await;
    }
}

/// Wires an open L2CAP channel to a link: a bounded SDU queue into a writer task, a reader task out.
pub(super) async fn attach_l2cap(
    shared: &Arc<Mutex<Shared>>,
    link: LinkId,
    stream: Stream,
    events: &mpsc::UnboundedSender<DriverEvent>,
) -> bool {
    let max_sdu = send_mtu(&stream).await;
    let (mut read, mut write) = stream.into_split();
    let (queue, mut sdus) = mpsc::channel::<Vec<u8>>(L2CAP_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(sdu) = sdus.recv().await {
            if write.write_all(&sdu).await.is_err() {
                return;
            }
        }
    })
    .abort_handle();
    let (shared_r, events_r) = (shared.clone(), events.clone());
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; L2CAP_READ];
        loop {
            match read.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    let data = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if events_r.send(DriverEvent::Received { link, bearer: Bearer::L2capCoc, data }).is_err() {
                        return;
                    }
                }
                // Both bearers share one LE connection: losing the channel means losing the link.
                _ => {
                    link_down(&shared_r, link, DisconnectReason::Remote, &events_r);
                    return;
                }
            }
        }
    })
    .abort_handle();
    let mut guard = lock(shared);
    let Some(tx) = guard.links.get_mut(&link) else {
        writer.abort();
        reader.abort();
        return false;
    };
    tx.l2cap = Some(queue);
    tx.tasks.extend([writer, reader]);
    drop(guard);
    let _ = events.send(DriverEvent::L2capOpened { link, max_sdu });
    true
}
