//! TCP cannot be starved (RFC 7766 §6.2.3): a full table closes its longest-idle
//! connection to admit a new client, one address holds at most its share, and a client
//! that stalls half-way through a message is dropped before an idle one.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::RecordType;
use k8s_gateway::dns::{MAX_TCP_CONNECTIONS, MAX_TCP_PER_CLIENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::fixtures::lb_service;
use crate::support::{DEADLINE, TestServer, addresses, query};

fn cluster() -> String {
    lb_service("web", "apps", Some("web.home.example"), &["192.168.1.10"])
}

/// A connection to `server` from the loopback address `from` (127.0.0.x).
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from(from), 0))
        .expect("bind a loopback source address");
    socket.connect(server).await.expect("connect")
}

/// Sends one query on `stream`; the answer's addresses, or `None` when the server closed
/// the connection instead of answering.
async fn ask_on(stream: &mut TcpStream) -> Option<Vec<String>> {
    let request = query("web.home.example", RecordType::A).to_vec().unwrap();
    let mut framed = u16::try_from(request.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    stream.write_all(&framed).await.ok()?;
    let mut len = [0u8; 2];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut len))
        .await
        .expect("an answer or a close in time")
        .ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.ok()?;
    let message = hickory_proto::op::Message::from_vec(&answer).expect("a well-formed answer");
    Some(addresses(&message))
}

/// Opens `count` connections from `from`, each answered once (so each is in the table).
async fn open_answered(from: [u8; 4], server: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = connect_from(from, server).await;
        assert!(
            ask_on(&mut stream).await.is_some(),
            "answered while there is room"
        );
        streams.push(stream);
    }
    streams
}

#[tokio::test]
async fn a_full_table_closes_the_longest_idle_connection_to_admit_a_new_client() {
    let server = TestServer::start(&cluster(), &[]).await;
    // Fill the table from several addresses, each within its share.
    let mut idle = Vec::new();
    let per_address = MAX_TCP_PER_CLIENT;
    for (i, from) in (2..)
        .take(MAX_TCP_CONNECTIONS.div_ceil(per_address))
        .enumerate()
    {
        let count = per_address.min(MAX_TCP_CONNECTIONS - i * per_address);
        idle.extend(open_answered([127, 0, 0, from], server.addr, count).await);
    }
    assert_eq!(idle.len(), MAX_TCP_CONNECTIONS);
    // A new client is admitted and answered...
    let mut newcomer = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(
        ask_on(&mut newcomer).await,
        Some(vec!["192.168.1.10".to_string()])
    );
    // ...at the expense of the connection idle the longest, the first opened.
    assert_eq!(
        ask_on(&mut idle[0]).await,
        None,
        "the longest-idle connection is closed"
    );
    // The others are still served.
    assert!(ask_on(&mut idle[MAX_TCP_CONNECTIONS - 1]).await.is_some());
    server.stop().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    let server = TestServer::start(&cluster(), &[]).await;
    let mut other = open_answered([127, 0, 0, 20], server.addr, 1).await;
    let mut greedy = open_answered([127, 0, 0, 21], server.addr, MAX_TCP_PER_CLIENT).await;
    let mut one_more = connect_from([127, 0, 0, 21], server.addr).await;
    assert!(
        ask_on(&mut one_more).await.is_some(),
        "the client's next connection is served"
    );
    assert_eq!(
        ask_on(&mut greedy[0]).await,
        None,
        "its own longest-idle one is closed"
    );
    assert!(ask_on(&mut greedy[1]).await.is_some(), "its others stay");
    assert!(
        ask_on(&mut other[0]).await.is_some(),
        "other clients keep theirs"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_half_sent_message_is_dropped_before_an_idle_connection() {
    let server = TestServer::start(&cluster(), &[]).await;
    // An idle client, answered once, then silent.
    let mut idle = open_answered([127, 0, 0, 30], server.addr, 1).await;
    // A client that starts a message and stalls: a 40-byte length, 5 bytes of it.
    let mut stalled = connect_from([127, 0, 0, 31], server.addr).await;
    stalled.write_all(&[0, 40, 1, 2, 3, 4, 5]).await.unwrap();
    let mut rest = [0u8; 1];
    let closed = tokio::time::timeout(DEADLINE, stalled.read(&mut rest))
        .await
        .expect("the stalled connection is closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "closed, not answered");
    // The idle connection, older than the stalled one, is still open: the half-sent
    // message had a much shorter time than an idle wait (Knot's tcp-io-timeout).
    assert!(
        ask_on(&mut idle[0]).await.is_some(),
        "the idle client is still served"
    );
    server.stop().await;
}
