//! The DNS check: one query of a record type, over UDP (over TCP when the answer is
//! truncated), against a resolver the monitor names (vetted by the egress policy like any
//! target) or the system's (the first `nameserver` of `/etc/resolv.conf`, chosen by the
//! operator, so not vetted).
//!
//! What conditions see: `[DNS_RCODE]` (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, …), `[BODY]` the
//! answers of the type asked for, one per line in zone-file form (`93.184.215.14`,
//! `10 mail.example.org.`), `[IP]` the resolver's address, `[RESPONSE_TIME]`. The time to the
//! answer is the check's DNS time. Without an assertion on `[DNS_RCODE]`, an answer other than
//! `NOERROR` with at least one record fails the check with outcome `dns`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType as Rr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use url::Url;
use vigil_schema::{DnsQuery, Outcome, RecordType};

use super::egress::{Egress, Refused, Timing, micros};

/// Largest answer read over UDP (EDNS payload size, as DNS flag day 2020 recommends).
const UDP_PAYLOAD: u16 = 1232;

/// What a resolver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The response code's mnemonic (`NOERROR`).
    pub(crate) rcode: String,
    /// The records of the type asked for, in zone-file form, in the order received.
    pub(crate) records: Vec<String>,
    /// The resolver asked.
    pub(crate) resolver: SocketAddr,
}

/// A failed query.
fn failed(outcome: Outcome, message: impl Into<String>) -> Refused {
    Refused::new(outcome, message.into())
}

fn record_type(t: RecordType) -> Rr {
    match t {
        RecordType::A => Rr::A,
        RecordType::Aaaa => Rr::AAAA,
        RecordType::Cname => Rr::CNAME,
        RecordType::Mx => Rr::MX,
        RecordType::Txt => Rr::TXT,
        RecordType::Ns => Rr::NS,
        RecordType::Soa => Rr::SOA,
        RecordType::Srv => Rr::SRV,
        RecordType::Ptr => Rr::PTR,
        RecordType::Caa => Rr::CAA,
    }
}

/// The mnemonic of a response code (RFC 6895 §2.3).
pub(crate) fn rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return format!("RCODE{code}"),
    };
    name.to_owned()
}

/// The system's resolver: the first `nameserver` of `/etc/resolv.conf`.
fn system_resolver() -> Result<IpAddr, Refused> {
    let text = std::fs::read("/etc/resolv.conf")
        .map_err(|e| failed(Outcome::Dns, format!("cannot read /etc/resolv.conf: {e}")))?;
    let config = resolv_conf::Config::parse(&text)
        .map_err(|e| failed(Outcome::Dns, format!("cannot parse /etc/resolv.conf: {e}")))?;
    config
        .nameservers
        .first()
        .map(|ns| match ns {
            resolv_conf::ScopedIp::V4(ip) => IpAddr::V4(*ip),
            resolv_conf::ScopedIp::V6(ip, _) => IpAddr::V6(*ip),
        })
        .ok_or_else(|| failed(Outcome::Dns, "/etc/resolv.conf names no nameserver"))
}

/// The resolver to ask: the system's, or the monitor's, vetted.
async fn resolver(
    egress: &Egress,
    q: &DnsQuery,
    timing: &mut Timing,
) -> Result<SocketAddr, Refused> {
    let Some(host) = &q.resolver else {
        return Ok(SocketAddr::new(system_resolver()?, q.port));
    };
    let bracketed = match host.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.clone(),
    };
    let url = Url::parse(&format!("http://{bracketed}:{}/", q.port))
        .map_err(|e| failed(Outcome::InvalidUrl, format!("url: resolver {host:?}: {e}")))?;
    // Resolving the resolver's own name is not the check's DNS time.
    let mut vetting = Timing::default();
    let addrs = egress.vet(&url, &mut vetting).await?;
    timing.dns_us = None;
    addrs
        .first()
        .copied()
        .ok_or_else(|| failed(Outcome::Dns, format!("resolver {host} has no address")))
}

/// Runs the query `q`, timing it into `timing.dns_us`.
pub(crate) async fn query(
    egress: &Egress,
    q: &DnsQuery,
    timing: &mut Timing,
) -> Result<Answer, Refused> {
    let resolver = resolver(egress, q, timing).await?;
    let name = Name::from_ascii(format!("{}.", q.name))
        .map_err(|e| failed(Outcome::InvalidUrl, format!("url: name {:?}: {e}", q.name)))?;
    let asked = record_type(q.record_type);
    let id = (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16;
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, asked));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    message.set_edns(edns);
    let bytes = message
        .to_vec()
        .map_err(|e| failed(Outcome::InvalidUrl, format!("cannot encode the query: {e}")))?;

    let t = Instant::now();
    let mut response = over_udp(resolver, id, &bytes).await?;
    if response.truncated() {
        response = over_tcp(resolver, id, &bytes).await?;
    }
    timing.dns_us = Some(micros(t.elapsed()));
    let records = response
        .answers()
        .iter()
        .filter(|r| r.record_type() == asked)
        .map(|r| r.data().to_string())
        .collect();
    Ok(Answer {
        rcode: rcode_name(u16::from(response.response_code())),
        records,
        resolver,
    })
}

/// Whether `reply` answers the query with id `id`.
fn answers(reply: &Message, id: u16) -> bool {
    reply.id() == id && reply.message_type() == MessageType::Response
}

async fn over_udp(resolver: SocketAddr, id: u16, query: &[u8]) -> Result<Message, Refused> {
    let local: SocketAddr = match resolver {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let unreachable = |e: std::io::Error| {
        failed(
            Outcome::Connect,
            format!("cannot reach the resolver {resolver}: {e}"),
        )
    };
    let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
    socket.connect(resolver).await.map_err(unreachable)?;
    socket.send(query).await.map_err(unreachable)?;
    let mut buf = vec![0u8; usize::from(UDP_PAYLOAD).max(4096)];
    loop {
        let n = socket.recv(&mut buf).await.map_err(unreachable)?;
        // Anything else arriving on the port (a stray or spoofed datagram) is ignored.
        if let Ok(reply) = Message::from_vec(&buf[..n])
            && answers(&reply, id)
        {
            return Ok(reply);
        }
    }
}

async fn over_tcp(resolver: SocketAddr, id: u16, query: &[u8]) -> Result<Message, Refused> {
    let io = |e: std::io::Error| {
        failed(
            Outcome::Connect,
            format!("resolver {resolver} over TCP: {e}"),
        )
    };
    let mut stream = TcpStream::connect(resolver).await.map_err(io)?;
    let len = u16::try_from(query.len())
        .map_err(|_| failed(Outcome::InvalidUrl, "the query is too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(io)?;
    let len = stream.read_u16().await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.map_err(io)?;
    let reply = Message::from_vec(&buf).map_err(|e| {
        failed(
            Outcome::Protocol,
            format!("resolver {resolver} sent an invalid answer: {e}"),
        )
    })?;
    if !answers(&reply, id) {
        return Err(failed(
            Outcome::Protocol,
            format!("resolver {resolver} answered another query over TCP"),
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(23), "RCODE23");
    }

    #[test]
    fn every_record_type_maps() {
        for (name, t) in RecordType::ALL {
            assert_eq!(record_type(t).to_string(), name);
        }
    }
}
