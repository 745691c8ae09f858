//! Linux: sending one batch of UDP answers with as little kernel work as it allows.
//!
//! Under load nine tenths of a UDP answer's cost is the kernel's, and most of that is
//! paid per datagram sent: the system call's message, the route, building the packet,
//! the IP output. A batch's answers to one client that have the same length go out as
//! one UDP GSO send (`UDP_SEGMENT`, Linux 4.18): the kernel does that work once and cuts
//! the packet into the datagrams on the way in to the client's socket. What arrives is
//! the same datagrams, byte for byte, as a `sendmmsg` would send; the other answers go
//! as datagrams of their own, mostly in the same `sendmmsg`. It stays because it was
//! measured worth it against plain `sendmmsg` at full load (README, Performance: UDP).

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg, setsockopt, sockopt,
};

/// Datagrams one GSO send may carry: the kernel's `UDP_MAX_SEGMENTS` is 64 (128 since
/// Linux 6.9).
const MAX_SEGMENTS: usize = 64;

/// Batches shorter than this go one datagram per answer, as before segmenting: a few
/// answers gain little from it, and at a light load (batches of one or two) segmenting
/// put the 99th percentile of latency above Knot's (README, Performance: UDP).
const SEGMENT_FROM: usize = 4;

/// One answer of a batch: its bytes' index in the caller's buffers, and where it goes.
#[derive(Clone, Copy)]
pub struct Outgoing {
    pub index: usize,
    pub peer: SocketAddr,
    pub address: SockaddrStorage,
}

/// Sends batches of answers on one UDP socket; keeps its buffers between batches.
pub struct BatchSender {
    /// For `sendmmsg` without control messages.
    plain: MultiHeaders<SockaddrStorage>,
    /// For `sendmmsg` with a `UDP_SEGMENT` control message on every message (a message
    /// no longer than the segment size goes out as one datagram).
    segmented: MultiHeaders<SockaddrStorage>,
    /// The answers not sent yet, sorted by length, longest first.
    pending: Vec<Outgoing>,
    /// What the next `sendmmsg` sends: a range of `pending` per message.
    messages: Vec<std::ops::Range<usize>>,
    addresses: Vec<Option<SockaddrStorage>>,
    /// Whether this socket segments: the kernel knows `UDP_SEGMENT`, and no send has
    /// said the path cannot (IPsec, or a device without checksum offload: `EIO`).
    segments: bool,
}

impl BatchSender {
    /// A sender for up to `batch` answers at a time on `socket`.
    pub fn new(socket: BorrowedFd<'_>, batch: usize) -> BatchSender {
        // Setting the socket's default segment size to 0 (no segmentation) changes
        // nothing, and fails on a kernel that does not know UDP GSO: a kernel that does
        // not know it would ignore the per-send option and send one long datagram.
        let segments = setsockopt(&socket, sockopt::UdpGsoSegment, &0).is_ok();
        BatchSender {
            plain: MultiHeaders::preallocate(batch, None),
            segmented: MultiHeaders::preallocate(batch, Some(nix::cmsg_space!(u16))),
            pending: Vec::with_capacity(batch),
            messages: Vec::with_capacity(batch),
            addresses: Vec::with_capacity(batch),
            segments,
        }
    }

    /// Sends `batch`: each [`Outgoing`]'s bytes are `answers[index]`. An answer the
    /// kernel refuses is dropped (the client asks again); the others still go. Returns
    /// how many were dropped.
    ///
    /// Mostly one system call per batch: the segment size is the length most answers
    /// to one client share; those answers go as one message per client, and every
    /// shorter answer as a message of its own, in the same `sendmmsg`. Answers longer
    /// than the segment size go in a next call, chosen the same way.
    pub fn send(
        &mut self,
        socket: BorrowedFd<'_>,
        answers: &[Vec<u8>],
        batch: &[Outgoing],
    ) -> usize {
        self.pending.clear();
        self.pending.extend_from_slice(batch);
        if !self.segments || batch.len() < SEGMENT_FROM {
            return self.send_plain(socket, answers, 0);
        }
        let mut dropped = 0;
        // Longest first, then by client: each call takes a tail of what is left.
        self.pending.sort_unstable_by(|a, b| {
            let (la, lb) = (answers[a.index].len(), answers[b.index].len());
            lb.cmp(&la).then(a.peer.cmp(&b.peer))
        });
        while !self.pending.is_empty() {
            let Some(size) = self.segment_size(answers) else {
                return dropped + self.send_plain(socket, answers, 0);
            };
            // Answers longer than `size` wait for the next call.
            let first = (self.pending.iter())
                .take_while(|out| answers[out.index].len() > size)
                .count();
            self.messages.clear();
            self.addresses.clear();
            let mut at = first;
            while at < self.pending.len() {
                let out = self.pending[at];
                let mut end = at + 1;
                if answers[out.index].len() == size {
                    while end < self.pending.len()
                        && end - at < MAX_SEGMENTS
                        && self.pending[end].peer == out.peer
                        && answers[self.pending[end].index].len() == size
                    {
                        end += 1;
                    }
                }
                self.messages.push(at..end);
                self.addresses.push(Some(out.address));
                at = end;
            }
            let sent = self.send_segmented(socket, answers, size);
            if let Some(unsent) = self.messages.get(sent) {
                // Refused (the path cannot segment, or a segment is over its MTU): the
                // rest one datagram each.
                dropped += self.send_plain(socket, answers, unsent.start);
            }
            // What is left is longer; it goes next.
            self.pending.truncate(first);
        }
        dropped
    }

    /// The length shared by the most answers to one client among those pending, when
    /// at least two share one: the segment size of the next call.
    fn segment_size(&self, answers: &[Vec<u8>]) -> Option<usize> {
        let pending = &self.pending;
        let mut best: Option<(usize, usize)> = None; // (answers, length)
        let mut at = 0;
        while at < pending.len() {
            let (peer, length) = (pending[at].peer, answers[pending[at].index].len());
            let run = pending[at..]
                .iter()
                .take_while(|o| o.peer == peer && answers[o.index].len() == length)
                .count();
            if run >= 2 && best.is_none_or(|(count, _)| run > count) {
                best = Some((run, length));
            }
            at += run;
        }
        best.map(|(_, length)| length)
    }

    /// One `sendmmsg` of [`Self::messages`] with segment size `size`: how many of the
    /// messages went out.
    fn send_segmented(
        &mut self,
        socket: BorrowedFd<'_>,
        answers: &[Vec<u8>],
        size: usize,
    ) -> usize {
        let Ok(size) = u16::try_from(size) else {
            return 0;
        };
        let slices: Vec<IoSlice<'_>> = self
            .pending
            .iter()
            .map(|out| IoSlice::new(&answers[out.index]))
            .collect();
        let iovecs: Vec<&[IoSlice<'_>]> =
            self.messages.iter().map(|m| &slices[m.clone()]).collect();
        let control = [ControlMessage::UdpGsoSegments(&size)];
        match sendmmsg(
            socket.as_raw_fd(),
            &mut self.segmented,
            iovecs.iter(),
            &self.addresses,
            control,
            MsgFlags::empty(),
        ) {
            Ok(sent) => sent.count(),
            // IPsec, UDP-Lite, a device without checksum offload: never on this socket.
            Err(Errno::EIO | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP) => {
                self.segments = false;
                0
            }
            Err(_) => 0,
        }
    }

    /// `pending[start..]`, one datagram per message, in one `sendmmsg` when the kernel
    /// takes them all. It stops at the first datagram it refuses (a partial count, or an
    /// error when that is the first): that one is dropped and counted, and the rest go in
    /// the next call, so one bad destination costs one answer, not the batch's tail.
    /// Returns the answers dropped.
    fn send_plain(&mut self, socket: BorrowedFd<'_>, answers: &[Vec<u8>], start: usize) -> usize {
        let mut dropped = 0;
        let mut at = start;
        while at < self.pending.len() {
            let rest = &self.pending[at..];
            self.addresses.clear();
            self.addresses
                .extend(rest.iter().map(|out| Some(out.address)));
            let slices: Vec<[IoSlice<'_>; 1]> = rest
                .iter()
                .map(|out| [IoSlice::new(&answers[out.index])])
                .collect();
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.plain,
                slices.iter(),
                &self.addresses,
                [],
                MsgFlags::empty(),
            )
            .map_or(0, |sent| sent.count());
            at += sent;
            if at < self.pending.len() {
                at += 1; // refused: skip it
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;

    /// Every datagram `socket` has, as bytes, counted: waits for `expected` of them.
    fn receive(socket: &UdpSocket, expected: usize) -> BTreeMap<Vec<u8>, usize> {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        let mut got = BTreeMap::new();
        let mut buffer = [0u8; 65536];
        for _ in 0..expected {
            let (len, _) = socket.recv_from(&mut buffer).expect("a datagram in time");
            *got.entry(buffer[..len].to_vec()).or_insert(0) += 1;
        }
        // Nothing more: an extra datagram would be one answer cut in two.
        socket.set_nonblocking(true).expect("non-blocking");
        assert!(
            socket.recv_from(&mut buffer).is_err(),
            "more datagrams than answers"
        );
        got
    }

    fn outgoing(index: usize, peer: &UdpSocket) -> Outgoing {
        let peer = peer.local_addr().expect("bound");
        Outgoing {
            index,
            peer,
            address: SockaddrStorage::from(peer),
        }
    }

    /// The batch arrives as its datagrams, each exactly once and whole, however it was
    /// grouped: answers of one length to one client (several GSO sends, one of them the
    /// full [`MAX_SEGMENTS`]), lengths that occur once, and a second client.
    #[test]
    fn a_batch_arrives_as_its_datagrams() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (one, two) = (
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
        );
        let mut answers = Vec::new();
        let mut batch = Vec::new();
        let mut expected: [BTreeMap<Vec<u8>, usize>; 2] = Default::default();
        for i in 0..(3 * MAX_SEGMENTS) {
            // Mostly 40 bytes, some 41, a few of their own length; distinct contents.
            let length = match i % 10 {
                0..=6 => 40,
                7 | 8 => 41,
                _ => 50 + i,
            };
            let mut answer = vec![u8::try_from(i % 256).expect("small"); length];
            answer[0] = u8::try_from(i / 256).expect("small");
            let client = if i % 4 == 3 { 1 } else { 0 };
            *expected[client].entry(answer.clone()).or_insert(0) += 1;
            batch.push(outgoing(
                answers.len(),
                if client == 0 { &one } else { &two },
            ));
            answers.push(answer);
        }
        let mut sender = BatchSender::new(server.as_fd(), batch.len());
        assert!(
            sender.segments,
            "this kernel segments (UDP GSO), so the test covers it"
        );
        sender.send(server.as_fd(), &answers, &batch);
        let counts = expected.each_ref().map(|e| e.values().sum::<usize>());
        assert_eq!(receive(&one, counts[0]), expected[0]);
        assert_eq!(receive(&two, counts[1]), expected[1]);
    }

    /// Sends `answers` (distinct) from `server` to `client` as one batch, checks that
    /// each arrives once and whole, and returns the sender.
    fn send_to_one(server: &UdpSocket, client: &UdpSocket, answers: &[Vec<u8>]) -> BatchSender {
        let batch: Vec<Outgoing> = (0..answers.len()).map(|i| outgoing(i, client)).collect();
        let mut sender = BatchSender::new(server.as_fd(), batch.len());
        sender.send(server.as_fd(), answers, &batch);
        let expected = answers.iter().map(|a| (a.clone(), 1)).collect();
        assert_eq!(receive(client, answers.len()), expected);
        sender
    }

    /// A segmented send the kernel refuses (here: longer in all than a datagram can
    /// be) goes out one datagram per answer.
    #[test]
    fn a_refused_segmented_send_goes_one_by_one() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let answers: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 40_000]).collect();
        let sender = send_to_one(&server, &client, &answers);
        assert!(
            sender.segments,
            "a refusal for size does not stop segmenting"
        );
    }

    /// One answer the kernel refuses (its destination is port 0: `EINVAL`) is dropped
    /// and counted; the answers after it in the batch still go out, whether the batch
    /// goes one datagram per answer (short) or segmented (longer).
    #[test]
    fn a_refused_answer_does_not_drop_the_rest_of_the_batch() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let nowhere: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        for count in [3u8, 8] {
            let answers: Vec<Vec<u8>> = (0..count).map(|i| vec![i; 30]).collect();
            let mut batch: Vec<Outgoing> =
                (0..answers.len()).map(|i| outgoing(i, &client)).collect();
            // The second answer goes nowhere.
            batch[1].peer = nowhere;
            batch[1].address = SockaddrStorage::from(nowhere);
            let mut sender = BatchSender::new(server.as_fd(), batch.len());
            let dropped = sender.send(server.as_fd(), &answers, &batch);
            assert_eq!(dropped, 1, "{count} answers: the refused one is counted");
            let expected = (answers.iter().enumerate())
                .filter(|(i, _)| *i != 1)
                .map(|(_, a)| (a.clone(), 1))
                .collect();
            assert_eq!(
                receive(&client, answers.len() - 1),
                expected,
                "{count} answers: every other one arrives"
            );
        }
    }

    /// IPv6 clients are grouped the same way.
    #[test]
    fn ipv6_answers_arrive_whole() {
        let Ok(server) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let client = UdpSocket::bind("[::1]:0").expect("bind");
        let answers: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 33]).collect();
        send_to_one(&server, &client, &answers);
    }
}
