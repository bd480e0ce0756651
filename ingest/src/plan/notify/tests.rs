use std::time::Duration;

use vigil_schema::{MaintenanceSchedule, Matcher, Timestamp};

use super::super::{FilePlan, parse_file};
use super::*;
use crate::{Error, KafkaConnection};

const FILE: &str = r#"
channels:
  - id: ops-hooks
    name: Ops webhook
    kind:
      webhook:
        url: https://hooks.example.com/vigil
        secret: "${secret:OPS_HOOK}"
        headers: { Authorization: "Bearer ${secret:OPS_TOKEN}", X-Team: ops }
    title: "[{{state}}] {{rule}} on {{monitor}}"
  - id: pager
    kind: { pagerduty: { routing_key: "${secret:PD_KEY}" } }
    send_resolved: true
  - id: ops-mail
    kind:
      email:
        smtp_host: smtp.example.com
        tls: implicit
        username: vigil
        password: "${secret:SMTP_PASSWORD}"
        from: "Vigil <vigil@example.com>"
        to: [ops@example.com]
  - id: chat
    kind: { slack: { url: "${secret:SLACK_OPS}" } }
routes:
  receiver: [ops-mail]
  group_by: [rule]
  routes:
    - matchers: ["severity=critical"]
      receiver: [pager]
      group_wait: 10s
      escalate: { after: 15m, to: [ops-hooks] }
      continue: true
    - matchers: ["team=~web|mobile"]
      receiver: [chat]
silences:
  - id: checkout-deploy
    matchers: ["monitor=checkout"]
    starts_at: 2026-03-01T10:00:00Z
    ends_at: 2026-03-01T12:00:00Z
    author: ana
    comment: release 4.2
maintenance:
  - id: db-weekly
    name: Database patching
    matchers: ["monitor=~db-.*"]
    schedule:
      recurring: { cron: "0 2 * * SUN", duration: 2h, time_zone: Europe/Berlin }
  - id: dc-move
    matchers: ["region=eu-west"]
    schedule:
      one_off: { starts_at: 2026-05-01T00:00:00Z, ends_at: 2026-05-01T04:00:00Z }
status_pages:
  - id: public
    title: Acme status
    groups:
      - name: Shop
        components:
          - { monitor: checkout, name: Checkout }
"#;

fn problems_of(text: &str) -> Vec<String> {
    match parse_file("m.yaml", text) {
        Err(Error::InvalidMonitors { problems, .. }) => problems,
        other => panic!("expected invalid monitors, got {other:?}"),
    }
}

fn arcs<S: Clone>(specs: &[S]) -> Vec<Arc<S>> {
    specs.iter().cloned().map(Arc::new).collect()
}

fn current_of(file: &MonitorsFile) -> NotifyCurrent {
    NotifyCurrent {
        channels: arcs(file.channels.as_deref().unwrap_or_default()),
        routes: file.routes.clone().map(Arc::new),
        silences: arcs(file.silences.as_deref().unwrap_or_default()),
        maintenance: arcs(file.maintenance.as_deref().unwrap_or_default()),
        status_pages: arcs(file.status_pages.as_deref().unwrap_or_default()),
    }
}

#[test]
fn parses_every_notification_section() {
    let file = parse_file("m.yaml", FILE).unwrap();
    assert_eq!(file.monitors, None);
    let channels = file.channels.as_ref().unwrap();
    let kinds: Vec<&str> = channels.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["webhook", "pagerduty", "email", "slack"]);
    let routes = file.routes.as_ref().unwrap();
    assert_eq!(routes.routes[0].group_wait, Some(Duration::from_secs(10)));
    assert_eq!(
        file.silences.as_ref().unwrap()[0].matchers,
        [Matcher::new(
            "monitor",
            vigil_schema::MatchOp::Equal,
            "checkout"
        )]
    );
    let windows = file.maintenance.as_ref().unwrap();
    assert!(matches!(
        &windows[0].schedule,
        MaintenanceSchedule::Recurring { time_zone, .. } if time_zone == "Europe/Berlin"
    ));
    assert!(matches!(
        windows[1].schedule,
        MaintenanceSchedule::OneOff { starts_at, .. }
            if starts_at == Timestamp::parse_rfc3339("2026-05-01T00:00:00Z").unwrap()
    ));
}

#[test]
fn problems_name_their_paths() {
    let text = r#"
channels:
  - id: hooks
    kind: { webhook: { url: "https://hooks.slack.com/services/T0/B0/XYZ", secret: whsec_abc } }
    title: "{{titel}}"
  - id: mail
    kind: { email: { smtp_host: smtp.example.com, username: u, password: hunter2,
                     from: v@x.test, to: [ops@example..com] } }
  - id: hooks
    kind: { teams: {} }
routes:
  receiver: [hooks]
  routes:
    - matchers: ["team=~(web"]
      group_interval: 0s
silences:
  - { id: s1, matchers: [], author: ana, starts_at: 2026-03-01T10:00:00Z, ends_at: 2026-03-01T09:00:00Z }
  - { id: both, matchers: ["a=b"], author: ana, starts_at: 2026-03-01T10:00:00Z, ends_at: 2026-03-01T11:00:00Z }
maintenance:
  - id: both
    matchers: ["monitor=db"]
    schedule: { recurring: { cron: "0 25 * * *", duration: 1h, time_zone: Mars/Olympus } }
status_pages:
  - id: Public Page
    title: Acme
    groups: [{ name: API, components: [{ monitor: api, name: "" }] }]
  - { id: p2, title: x, groups: [], url: "https://internal" }
"#;
    let problems = problems_of(text);
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "channels[0].kind.webhook.url",
            "channels[0].kind.webhook.secret",
            "channels[0].title",
            "channels[1].kind.email.password",
            "channels[1].kind.email.to[0]",
            "channels[2].kind",
            "routes.routes[0].group_interval",
            "silences[0].matchers",
            "silences[0].ends_at",
            "maintenance[0].schedule.recurring.cron",
            "maintenance[0].schedule.recurring.time_zone",
            "maintenance[0].id",
            "status_pages[0].id",
            "status_pages[0].groups[0].components[0].name",
            "status_pages[1]",
        ],
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("unknown field `{{titel}}`"),
        "{problems:#?}"
    );
    assert!(
        problems[5].contains("unknown variant `teams`"),
        "{problems:#?}"
    );
    let all = problems.join("\n");
    for secret in ["XYZ", "whsec_abc", "hunter2"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    // The regex error is reported once the rest of the tree is valid.
    let regex = problems_of("routes: { routes: [{ matchers: [\"team=~(web\"] }] }");
    assert!(
        regex[0].starts_with("routes.routes[0].matchers[0]: invalid regular expression"),
        "{regex:?}"
    );
    assert_eq!(
        problems_of("routes: [a]"),
        ["routes: must be a mapping, the root of the routing tree"]
    );
}

#[test]
fn plans_each_section_and_names_routes_alone() {
    let file = parse_file("m.yaml", FILE).unwrap();
    let mut current = current_of(&file);
    let mut old_pager = (*current.channels[1]).clone();
    old_pager.send_resolved = false;
    current.channels[1] = Arc::new(old_pager);
    current.channels.push(Arc::new(ChannelSpec {
        id: "legacy".into(),
        ..(*current.channels[3]).clone()
    }));
    let mut old_tree = (**current.routes.as_ref().unwrap()).clone();
    old_tree.group_by = None;
    current.routes = Some(Arc::new(old_tree));
    current.silences.clear();

    let plan = FilePlan::default()
        .with_notify("m.yaml", &file, &current, false)
        .unwrap();
    assert_eq!(
        plan.to_string(),
        "~ update channel pager\n    send_resolved: false -> true\n\
         ~ update routes\n    group_by: null -> [\"rule\"]\n\
         + create silence checkout-deploy\n\
         Plan: channels 0 to create, 1 to update, 0 to delete, 3 unchanged; \
         routes 0 to create, 1 to update, 0 to delete, 0 unchanged; \
         silences 1 to create, 0 to update, 0 to delete, 0 unchanged; \
         maintenance windows 0 to create, 0 to update, 0 to delete, 2 unchanged; \
         status pages 0 to create, 0 to update, 0 to delete, 1 unchanged.\n"
    );
    let pruned = FilePlan::default()
        .with_notify("m.yaml", &file, &current, true)
        .unwrap();
    assert!(pruned.to_string().contains("- delete channel legacy\n"));
    assert_eq!(pruned.len(), 4);
    let kafka = KafkaConnection {
        brokers: "127.0.0.1:9".into(),
        topics: vigil_schema::TopicNames::with_prefix("p"),
        request_timeout: Duration::from_secs(1),
    };
    assert_eq!(
        pruned.targets(&kafka),
        [
            ("p.channels".to_owned(), 2),
            ("p.routes".to_owned(), 1),
            ("p.silences".to_owned(), 1)
        ]
    );

    let same = FilePlan::default()
        .with_notify("m.yaml", &file, &current_of(&file), true)
        .unwrap();
    assert_eq!(
        same.to_string(),
        "No changes. 4 channel(s), 1 routing tree(s), 1 silence(s), 2 maintenance \
         window(s) and 1 status page(s) up to date.\n"
    );
    let fresh = FilePlan::default()
        .with_notify("m.yaml", &file, &NotifyCurrent::default(), false)
        .unwrap();
    assert!(fresh.to_string().starts_with("+ create channel chat\n"));
    assert!(fresh.to_string().contains("\n+ create routes\n"));
}

#[test]
fn a_section_the_file_lacks_is_left_alone() {
    let file = parse_file("m.yaml", FILE).unwrap();
    let current = current_of(&file);
    let silences_only = parse_file("s.yaml", "silences: []").unwrap();
    let plan = FilePlan::default()
        .with_notify("s.yaml", &silences_only, &current, true)
        .unwrap();
    assert!(plan.notify.channels.is_none() && plan.notify.routes.is_none());
    assert_eq!(
        plan.to_string(),
        "- delete silence checkout-deploy\nPlan: 0 to create, 0 to update, 1 to delete, 0 \
         unchanged.\n"
    );
}

#[test]
fn receivers_must_exist_after_the_plan() {
    let file = parse_file("m.yaml", FILE).unwrap();
    // The file's tree names `chat`; without it in the file or on the topic, planning fails.
    let mut without_chat = file.clone();
    without_chat
        .channels
        .as_mut()
        .unwrap()
        .retain(|c| c.id != "chat");
    let err = FilePlan::default()
        .with_notify("m.yaml", &without_chat, &NotifyCurrent::default(), false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "m.yaml is invalid:\nroutes.routes[1].receiver[0]: no channel has the id \"chat\""
    );
    // On the topic it is fine, unless --prune deletes it.
    let current = current_of(&file);
    assert!(
        FilePlan::default()
            .with_notify("m.yaml", &without_chat, &current, false)
            .is_ok()
    );
    assert!(
        FilePlan::default()
            .with_notify("m.yaml", &without_chat, &current, true)
            .is_err()
    );
    // A file with channels only may not prune one the tree on the topic names.
    let channels_only = MonitorsFile {
        channels: without_chat.channels.clone(),
        ..MonitorsFile::default()
    };
    let err = FilePlan::default()
        .with_notify("m.yaml", &channels_only, &current, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "channels: --prune would delete channel \"chat\", which the routing tree on the \
             topic names at routes[1].receiver[0]; keep it in `channels:` or change `routes:`"
        ),
        "{err}"
    );
}

#[test]
fn silences_and_maintenance_ids_are_one_key_space() {
    let file = parse_file("m.yaml", FILE).unwrap();
    let mut current = current_of(&file);
    current.silences = vec![Arc::new(SilenceSpec {
        id: "db-weekly".into(),
        ..file.silences.as_ref().unwrap()[0].clone()
    })];
    let err = FilePlan::default()
        .with_notify("m.yaml", &file, &current, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "maintenance[0].id: \"db-weekly\" is the id of a silence on the topic (silences and \
             maintenance windows share one topic and its ids)"
        ),
        "{err}"
    );
}

#[test]
fn export_writes_every_section_back() {
    let file = parse_file("m.yaml", FILE).unwrap();
    let yaml = super::super::export_all(&[], &[], &current_of(&file)).unwrap();
    assert!(!yaml.contains('!'), "enums are maps, not YAML tags: {yaml}");
    assert!(yaml.contains("${secret:SMTP_PASSWORD}"), "{yaml}");
    let back = parse_file("export", &yaml).unwrap();
    let sorted = |mut v: Vec<ChannelSpec>| {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    assert_eq!(back.channels.map(sorted), file.channels.clone().map(sorted));
    assert_eq!(back.routes, file.routes);
    assert_eq!(back.silences, file.silences);
    let mut windows = file.maintenance.unwrap();
    windows.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(back.maintenance, Some(windows));
    assert_eq!(back.status_pages, file.status_pages);
    // Without a routing tree, `routes:` is left out (and apply then leaves it alone).
    let empty = super::super::export_all(&[], &[], &NotifyCurrent::default()).unwrap();
    assert_eq!(
        empty,
        "monitors: []\nalerts: []\nchannels: []\nsilences: []\nmaintenance: []\nstatus_pages: []\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_sections_read_back_from_their_topics() {
    use tokio_util::sync::CancellationToken;

    use crate::monitors::load_specs;

    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let topics = vigil_schema::TopicNames::with_prefix("t");
    for spec in topics.specs() {
        cluster
            .create_topic(&spec.name, spec.partitions, 1)
            .unwrap();
    }
    let kafka = KafkaConnection {
        brokers: cluster.bootstrap_servers(),
        topics,
        request_timeout: Duration::from_secs(5),
    };
    let file = parse_file("m.yaml", FILE).unwrap();
    let plan = FilePlan::default()
        .with_notify("m.yaml", &file, &NotifyCurrent::default(), false)
        .unwrap();
    plan.apply(&kafka, Duration::from_secs(10)).await.unwrap();

    let token = CancellationToken::new();
    let wait = Duration::from_secs(10);
    let current = NotifyCurrent {
        channels: load_specs::<ChannelSpec>(&kafka, wait, token.child_token())
            .await
            .unwrap()
            .snapshot(),
        routes: load_specs::<RouteSpec>(&kafka, wait, token.child_token())
            .await
            .unwrap()
            .snapshot()
            .into_iter()
            .next(),
        silences: load_specs::<SilenceSpec>(&kafka, wait, token.child_token())
            .await
            .unwrap()
            .snapshot(),
        maintenance: load_specs::<MaintenanceSpec>(&kafka, wait, token.child_token())
            .await
            .unwrap()
            .snapshot(),
        status_pages: load_specs::<vigil_schema::StatusPageSpec>(&kafka, wait, token.child_token())
            .await
            .unwrap()
            .snapshot(),
    };
    token.cancel();
    // Silences and maintenance windows share a topic; each view holds only its own kind.
    assert_eq!(
        (
            current.channels.len(),
            current.silences.len(),
            current.maintenance.len(),
            current.status_pages.len()
        ),
        (4, 1, 2, 1)
    );
    assert_eq!(current.routes.as_deref(), file.routes.as_ref());
    let again = FilePlan::default()
        .with_notify("m.yaml", &file, &current, true)
        .unwrap();
    assert!(again.is_empty(), "{again}");
}
