use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::channel::fixture::{channel, context, notification, resolved, secrets};

fn email(port: u16) -> ChannelSpec {
    channel(json!({"id": "mail", "kind": {"email": {
        "smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none",
        "from": "Vigil <vigil@example.com>", "to": ["ops@example.com", "lead@example.com"]}}}))
}

#[test]
fn plain_and_html_bodies() {
    let s = secrets();
    let n = notification("mail");
    assert_eq!(
        plain(&email(25), &n, &context(&s)),
        "[FIRING:1] checkout-p99 on checkout-api\n\n\
         p99 of checkout-api is 950ms (> 800ms) (critical, firing since 2026-03-01T10:00:00Z)\n\
         https://vigil.example.com/api/v1/alerts?rule=checkout-p99&monitor=checkout-api\n"
    );
    assert_eq!(
        html(&email(25), &n, &context(&s)),
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n\
         <h2>[FIRING:1] checkout-p99 on checkout-api</h2>\n\
         <div style=\"border-left:4px solid #e01e5a;padding:4px 8px;margin:8px 0\">\
         <div style=\"white-space:pre-wrap\">p99 of checkout-api is 950ms (&gt; 800ms) \
         (critical, firing since 2026-03-01T10:00:00Z)</div>\
         <a href=\"https://vigil.example.com/api/v1/alerts?rule=checkout-p99&amp;\
         monitor=checkout-api\">Open in Vigil</a></div>\n</body></html>\n"
    );
}

#[test]
fn html_escapes_values_but_keeps_template_markup() {
    let s = secrets();
    let spec = channel(json!({"id": "mail", "kind": {"email": {
        "smtp_host": "localhost", "tls": "none", "from": "v@x.test", "to": ["o@x.test"]}},
        "title": "<{{rule}}>", "text": "<b>{{monitor}}</b>: {{summary}}"}));
    let mut n = notification("mail");
    n.alerts[0].transition.message = "<script>alert('x')</script> & \"q\"".into();
    let body = html(&spec, &n, &context(&s));
    assert!(body.contains("<h2>&lt;checkout-p99&gt;</h2>"), "{body}");
    assert!(
        body.contains(
            "<b>checkout-api</b>: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; \
             &quot;q&quot;"
        ),
        "{body}"
    );
    assert!(!body.contains("<script>"));
    let text = plain(&spec, &n, &context(&s));
    assert!(
        text.contains("<script>alert('x')</script>"),
        "plain text is not escaped"
    );
}

#[test]
fn the_message_has_both_alternatives_and_a_stable_id() {
    let s = secrets();
    let n = resolved("mail");
    let m = mail(&email(2525), &n, &context(&s)).unwrap();
    let formatted = String::from_utf8(m.message.formatted()).unwrap();
    for needle in [
        "From: Vigil <vigil@example.com>\r\n",
        "To: ops@example.com, lead@example.com\r\n",
        "Subject: [RESOLVED] checkout-p99 on checkout-api\r\n",
        &format!("Message-ID: <{}@vigil.notify>\r\n", n.idempotency_key),
        "Date: Sun, 01 Mar 2026 10:00:31 +0000\r\n",
        "Content-Type: multipart/alternative;",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/html; charset=utf-8",
    ] {
        assert!(
            formatted.contains(needle),
            "{needle:?} missing in:\n{formatted}"
        );
    }
    assert!(!format!("{m:?}").contains("password"));
}

#[test]
fn credentials_need_their_secret() {
    let s = secrets();
    let spec = channel(json!({"id": "mail", "kind": {"email": {
        "smtp_host": "smtp.example.com", "username": "vigil", "password": "${secret:SMTP}",
        "from": "v@x.test", "to": ["o@x.test"]}}}));
    let err = mail(&spec, &notification("mail"), &context(&s)).unwrap_err();
    assert_eq!(err.to_string(), "secret SMTP is not set");
}

/// What a minimal SMTP server on loopback received.
#[derive(Debug, Default)]
struct Received {
    commands: Vec<String>,
    data: String,
}

/// Serves one SMTP session; `rcpt` is the answer to `RCPT TO`.
async fn smtp_server(rcpt: &'static str) -> (u16, tokio::task::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut got = Received::default();
        write
            .write_all(b"220 localhost ESMTP test\r\n")
            .await
            .unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            got.commands.push(line.clone());
            let answer = match verb.as_str() {
                "EHLO" | "HELO" => "250-localhost\r\n250 8BITMIME\r\n",
                "MAIL" => "250 OK\r\n",
                "RCPT" => rcpt,
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await.unwrap();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if l == "." {
                            break;
                        }
                        got.data.push_str(&l);
                        got.data.push('\n');
                    }
                    "250 queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => "502 not implemented\r\n",
            };
            write.write_all(answer.as_bytes()).await.unwrap();
        }
        got
    });
    (port, task)
}

#[tokio::test]
async fn sends_over_smtp_on_loopback() {
    let (port, server) = smtp_server("250 OK\r\n").await;
    let s = secrets();
    let m = mail(&email(port), &notification("mail"), &context(&s)).unwrap();
    let answer = m.send(Duration::from_secs(10)).await;
    assert_eq!(answer, Answer::Accepted);
    let got = server.await.unwrap();
    assert!(got.commands[0].starts_with("EHLO "), "{:?}", got.commands);
    assert!(
        got.commands[1].starts_with("MAIL FROM:<vigil@example.com>"),
        "{:?}",
        got.commands
    );
    assert_eq!(got.commands[2], "RCPT TO:<ops@example.com>");
    assert_eq!(got.commands[3], "RCPT TO:<lead@example.com>");
    assert!(
        got.data
            .contains("Subject: [FIRING:1] checkout-p99 on checkout-api"),
        "{}",
        got.data
    );
    assert!(got.data.contains("text/html"), "{}", got.data);
}

#[tokio::test]
async fn smtp_rejections_are_permanent_or_transient() {
    let s = secrets();
    let (port, _server) = smtp_server("550 no such user\r\n").await;
    let m = mail(&email(port), &notification("mail"), &context(&s)).unwrap();
    let answer = m.send(Duration::from_secs(10)).await;
    assert!(
        matches!(&answer, Answer::Permanent(e) if e.contains("no such user")),
        "{answer:?}"
    );
    let (port, _server) = smtp_server("451 try later\r\n").await;
    let m = mail(&email(port), &notification("mail"), &context(&s)).unwrap();
    let answer = m.send(Duration::from_secs(10)).await;
    assert!(
        matches!(&answer, Answer::Transient(e) if e.contains("try later")),
        "{answer:?}"
    );
}
