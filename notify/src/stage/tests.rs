use uuid::Uuid;
use vigil_schema::{AlertAck, Redeliver, RouteSpec};

use super::*;
use crate::alert::AlertKey;
use crate::alert::tests::fire;
use crate::command::Sent;
use crate::route::Router;
use crate::silence::Suppressor;

fn catalog() -> Catalog {
    let routes: RouteSpec = serde_json::from_value(serde_json::json!({
        "receiver": ["first"], "group_wait": "0s",
        "escalate": {"after": "2s", "to": ["second"]},
    }))
    .unwrap();
    let channels = ["first", "second"]
        .into_iter()
        .map(|id| {
            let spec =
                serde_json::from_value(serde_json::json!({"id": id, "kind": {"console": {}}}))
                    .unwrap();
            (id.to_owned(), spec)
        })
        .collect();
    Catalog {
        channels,
        router: Router::new(&routes).unwrap(),
        suppressor: Suppressor::new(),
    }
}

fn redeliver(key: Uuid) -> NotifyCommand {
    NotifyCommand::Redeliver(Redeliver {
        command_id: Uuid::from_u128(1),
        delivery_id: Uuid::from_u128(2),
        idempotency_key: key,
        channel_id: "first".into(),
        author: "ops".into(),
        at: Timestamp(0),
    })
}

#[test]
fn commands_change_the_persisted_state_and_queue_their_work() {
    let catalog = catalog();
    let mut p = Persisted::default();
    p.state.observe(
        &inputs(&catalog),
        &fire("p99", "checkout", None, 0),
        Timestamp(0),
    );
    let sent = p.state.tick(&inputs(&catalog), Timestamp(0)).remove(0);
    p.sent.remember(&sent, 1, Timestamp(0));

    p.apply(
        &NotifyCommand::Ack(AlertAck {
            command_id: Uuid::from_u128(3),
            rule_id: "p99".into(),
            monitor_id: "checkout".into(),
            region: None,
            author: "ops".into(),
            comment: String::new(),
            at: Timestamp(1000),
        }),
        Timestamp(1000),
    );
    let later = p.state.tick(&inputs(&catalog), Timestamp(5000));
    assert!(later.iter().all(|n| n.channel_id != "second"), "{later:?}");
    assert!(!p.state.acknowledge(&AlertKey::new("p99", "other", None)));

    p.apply(&redeliver(sent.idempotency_key), Timestamp(6000));
    assert_eq!(p.redeliveries, [(sent.clone(), 2)]);
    p.apply(&redeliver(Uuid::from_u128(99)), Timestamp(6000));
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].status, DeliveryStatus::Failed);

    // The queues survive the changelog; the sent log travels in records of its own.
    let json = serde_json::to_value(&p).unwrap();
    assert!(json.get("sent").is_none());
    let back: Persisted = serde_json::from_value(json).unwrap();
    assert_eq!(back.redeliveries, p.redeliveries);
    assert_eq!(back.rejected, p.rejected);
    // A state written before commands existed still decodes.
    let old = serde_json::json!({"state": p.state, "retries": p.retries, "disabled": {}});
    let old: Persisted = serde_json::from_value(old).unwrap();
    assert!(old.redeliveries.is_empty() && old.rejected.is_empty());
}

#[test]
fn sent_log_records_restore_and_tombstones_remove() {
    let catalog = catalog();
    let mut state = State::new();
    state.observe(
        &inputs(&catalog),
        &fire("p99", "checkout", None, 0),
        Timestamp(0),
    );
    let n = state.tick(&inputs(&catalog), Timestamp(0)).remove(0);
    let key = n.idempotency_key;
    let entry = Sent {
        notification: n,
        attempt: 2,
        at: Timestamp(0),
    };
    let mut log = SentLog::new();
    let bytes = serde_json::to_vec(&entry).unwrap();
    changelog::restore_sent(&mut log, &key.to_string(), Some(&bytes));
    assert_eq!(log.get(&key), Some(&entry));
    changelog::restore_sent(&mut log, "not-a-uuid", Some(&bytes));
    changelog::restore_sent(&mut log, &key.to_string(), Some(b"{"));
    assert_eq!(log.len(), 1, "bad records are skipped");
    changelog::restore_sent(&mut log, &key.to_string(), Some(b""));
    assert!(log.is_empty());
}
