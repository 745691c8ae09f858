//! Linux: sending one batch of UDP answers in one `sendmmsg`, so that one refused
//! datagram costs that answer alone.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

/// One answer of a batch: its bytes' index in the caller's buffers, and where it goes.
#[derive(Clone, Copy)]
pub struct Outgoing {
    pub index: usize,
    pub address: SockaddrStorage,
}

/// Sends batches of answers on one UDP socket; keeps its buffers between batches.
pub struct BatchSender {
    headers: MultiHeaders<SockaddrStorage>,
    addresses: Vec<Option<SockaddrStorage>>,
}

impl BatchSender {
    /// A sender for up to `batch` answers at a time.
    pub fn new(batch: usize) -> BatchSender {
        BatchSender {
            headers: MultiHeaders::preallocate(batch, None),
            addresses: Vec::with_capacity(batch),
        }
    }

    /// Sends `batch` (each [`Outgoing`]'s bytes are `answers[index]`), one datagram per
    /// answer, in one `sendmmsg` when the kernel takes them all. It stops at the first
    /// datagram it refuses (a partial count, or an error when that is the first): that
    /// one is dropped (the client asks again), and the rest go in the next call, so one
    /// bad destination costs one answer, not the batch's tail. Returns how many were
    /// dropped.
    pub fn send(
        &mut self,
        socket: BorrowedFd<'_>,
        answers: &[Vec<u8>],
        batch: &[Outgoing],
    ) -> usize {
        let mut dropped = 0;
        let mut at = 0;
        while at < batch.len() {
            let rest = &batch[at..];
            self.addresses.clear();
            self.addresses
                .extend(rest.iter().map(|out| Some(out.address)));
            let slices: Vec<[IoSlice<'_>; 1]> = rest
                .iter()
                .map(|out| [IoSlice::new(&answers[out.index])])
                .collect();
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                slices.iter(),
                &self.addresses,
                [],
                MsgFlags::empty(),
            )
            .map_or(0, |sent| sent.count());
            at += sent;
            if at < batch.len() {
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
    use std::net::{SocketAddr, UdpSocket};
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
            address: SockaddrStorage::from(peer),
        }
    }

    /// The batch arrives as its datagrams, each exactly once and whole: answers to two
    /// clients, of one length and of lengths of their own.
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
        for i in 0..32 {
            // Mostly 40 bytes, some of their own length; distinct contents.
            let length = if i % 4 == 0 { 50 + i } else { 40 };
            let answer = vec![u8::try_from(i).expect("small"); length];
            let client = if i % 3 == 2 { 1 } else { 0 };
            *expected[client].entry(answer.clone()).or_insert(0) += 1;
            batch.push(outgoing(
                answers.len(),
                if client == 0 { &one } else { &two },
            ));
            answers.push(answer);
        }
        let mut sender = BatchSender::new(batch.len());
        assert_eq!(sender.send(server.as_fd(), &answers, &batch), 0);
        let counts = expected.each_ref().map(|e| e.values().sum::<usize>());
        assert_eq!(receive(&one, counts[0]), expected[0]);
        assert_eq!(receive(&two, counts[1]), expected[1]);
    }

    /// Sends `answers` (distinct) from `server` to `client` as one batch, checks that
    /// each arrives once and whole, and returns the sender.
    fn send_to_one(server: &UdpSocket, client: &UdpSocket, answers: &[Vec<u8>]) {
        let batch: Vec<Outgoing> = (0..answers.len()).map(|i| outgoing(i, client)).collect();
        let mut sender = BatchSender::new(batch.len());
        sender.send(server.as_fd(), answers, &batch);
        let expected = answers.iter().map(|a| (a.clone(), 1)).collect();
        assert_eq!(receive(client, answers.len()), expected);
    }

    /// One answer the kernel refuses (its destination is port 0: `EINVAL`) is dropped
    /// and counted; the answers after it in the batch still go out, in a short batch
    /// and a longer one.
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
            batch[1].address = SockaddrStorage::from(nowhere);
            let mut sender = BatchSender::new(batch.len());
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

    /// IPv6 answers arrive whole too.
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
