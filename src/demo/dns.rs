//! The demo target's DNS server (UDP): `demo.vigil.test` has A 127.0.0.1, AAAA ::1 and
//! TXT "vigil demo"; every other name is NXDOMAIN. It gives the demo's DNS monitor an answer
//! on a machine without a network.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The name the demo server answers for.
pub(crate) const NAME: &str = "demo.vigil.test";

/// The answer to `query` (bytes), or `None` for what is not a query.
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    let ours = Name::from_ascii(format!("{NAME}.")).ok()?;
    let mut code = ResponseCode::NoError;
    for q in query.queries() {
        reply.add_query(q.clone());
        // Names compare without regard to case.
        if *q.name() != ours {
            code = ResponseCode::NXDomain;
            continue;
        }
        let data = match q.query_type() {
            RecordType::A => RData::A(A(Ipv4Addr::LOCALHOST)),
            RecordType::AAAA => RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
            RecordType::TXT => RData::TXT(TXT::new(vec!["vigil demo".to_owned()])),
            _ => continue,
        };
        reply.add_answer(Record::from_rdata(q.name().clone(), 60, data));
    }
    reply.set_response_code(code);
    reply.to_vec().ok()
}

/// Answers queries on `socket` until `token` is cancelled.
pub(crate) async fn serve(socket: UdpSocket, token: CancellationToken) {
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::select! {
            () = token.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let Ok((n, peer)) = received else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n])
            && let Err(e) = socket.send_to(&reply, peer).await
        {
            tracing::debug!(%peer, error = %e, "Demo DNS: cannot answer.");
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::*;

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        Message::from_vec(&answer(&m.to_vec().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn answers_its_name_and_nothing_else() {
        let a = ask("Demo.Vigil.Test.", RecordType::A);
        assert_eq!(a.id(), 7);
        assert_eq!(a.response_code(), ResponseCode::NoError);
        assert_eq!(a.answers()[0].data().to_string(), "127.0.0.1");
        let txt = ask("demo.vigil.test.", RecordType::TXT);
        assert_eq!(txt.answers().len(), 1);
        let other = ask("example.org.", RecordType::A);
        assert_eq!(other.response_code(), ResponseCode::NXDomain);
        assert!(other.answers().is_empty());
    }
}
