//! The [`Evaluator`] on a thread of its own, fed by the pipeline's thread.
//!
//! Evaluating rules is a stage after windowing: it needs each closed window once and the
//! watermarks, in order, and gives back transitions and changelog records. Running it beside
//! the pipeline rather than inside it takes it off the path every probe result goes through:
//! the pipeline copies what a window's evaluation reads (its counts, its sketch, its checks)
//! into a [`Batch`] and goes on with the next records while this thread evaluates.
//!
//! Order is kept: one channel carries windows, watermarks and every other command in the order
//! the pipeline issued them, so the evaluator sees exactly the calls it would have seen inline
//! and its transitions (and their ids) are identical. Transitions come back as soon as a
//! command produced them (the consumer publishes them ahead of their batch, woken by the
//! `ready` notification), changelog records once the thread has nothing queued. [`Stage::collect`] hands those out either
//! after waiting for everything sent, or without waiting, as far as evaluation has got; each
//! window carries the number of the command that evaluates it, and the pipeline keeps a window
//! in memory (so offsets are not committed past it) until an output holding its evaluation was
//! taken. Either way nothing is committed that a restart could not evaluate again.
//!
//! A panic of the evaluating thread is raised again in the pipeline's thread at its next call.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;
use vigil_schema::AlertTransition;
use vigil_schema::sketch::Sketch;

use super::{ClosedWindow, Evaluator, RuleSet, Sample};
use crate::window::window_start;

/// Windows buffered before a batch is sent without waiting for the end of the call that
/// closes them (so evaluation of a large burst starts while the pipeline is still emitting it).
const BATCH_ITEMS: usize = 256;

/// Changelog records: (probes partition, key, value or `None` for a tombstone).
pub(crate) type Changes = Vec<(i32, String, Option<Bytes>)>;

/// What a batch carries, in order.
#[derive(Debug, Clone)]
enum Item {
    /// A closed window; its names, sketch and samples are in the batch's buffers.
    Window {
        partition: i32,
        monitor: Range<usize>,
        region: Range<usize>,
        start_ms: i64,
        end_ms: i64,
        count: u64,
        ok_count: u64,
        status: [u64; 5],
        sketch: usize,
        anomaly: Option<f64>,
        samples: Range<usize>,
    },
    /// `Evaluator::on_watermark(partition, at)`.
    Watermark { partition: i32, at: i64 },
}

/// Windows and watermarks on their way to the evaluator, in flat buffers reused from batch to
/// batch (a window costs no allocation once they have grown).
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Item>,
    names: String,
    /// Sketches in use are `sketches[..used]`; the rest keep their buffers for reuse.
    sketches: Vec<Sketch>,
    used: usize,
    samples: Vec<Sample>,
}

impl Batch {
    fn clear(&mut self) {
        self.items.clear();
        self.names.clear();
        self.used = 0;
        self.samples.clear();
    }

    fn name(&mut self, s: &str) -> Range<usize> {
        let from = self.names.len();
        self.names.push_str(s);
        from..self.names.len()
    }

    /// Evaluates the batch's items in order.
    fn evaluate(&self, ev: &mut Evaluator, out: &mut Vec<AlertTransition>) {
        for item in &self.items {
            match item {
                Item::Window {
                    partition,
                    monitor,
                    region,
                    start_ms,
                    end_ms,
                    count,
                    ok_count,
                    status,
                    sketch,
                    anomaly,
                    samples,
                } => {
                    let closed = ClosedWindow {
                        partition: *partition,
                        monitor_id: &self.names[monitor.clone()],
                        region: &self.names[region.clone()],
                        start_ms: *start_ms,
                        end_ms: *end_ms,
                        count: *count,
                        ok_count: *ok_count,
                        status: *status,
                        sketch: &self.sketches[*sketch],
                        anomaly: *anomaly,
                        samples: &self.samples[samples.clone()],
                    };
                    ev.on_window(&closed, out);
                }
                Item::Watermark { partition, at } => ev.on_watermark(*partition, *at, out),
            }
        }
    }
}

/// A command to the evaluating thread.
enum Command {
    Batch(Batch),
    SetRules(RuleSet),
    /// Drops the partition's state, restores it from its changelog records and evaluates the
    /// restored deltas again.
    Restore(i32, Vec<(String, Vec<u8>)>),
    DropPartition(i32),
    /// Nothing: its reply tells that every earlier command is done.
    Sync,
}

/// What the evaluating thread sends back: transitions as soon as a command produced them
/// (`upto: None`), and once nothing more is queued, how many commands are done and the
/// changelog records they produced.
struct Done {
    upto: Option<u64>,
    transitions: Vec<AlertTransition>,
    changes: Changes,
}

/// What [`Stage::collect`] hands out.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) transitions: Vec<AlertTransition>,
    pub(crate) changes: Changes,
}

/// The evaluator running on its own thread. See the [module docs](self).
pub(crate) struct Stage {
    commands: Option<Sender<Command>>,
    /// (In a mutex only to make the pipeline `Sync`: reached through `&mut self`, never
    /// locked.)
    replies: Mutex<Receiver<Done>>,
    /// Batches evaluated, sent back for reuse.
    spent: Mutex<Receiver<Batch>>,
    batch: Batch,
    /// The evaluator's accounted heap bytes, as of its last command.
    accounted: Arc<AtomicUsize>,
    /// Commands sent so far (the batch being filled goes out as number `sent + 1`).
    sent: u64,
    /// Commands whose output was received, and that output not yet handed out.
    received_upto: u64,
    received: Collected,
    /// Commands whose output was handed out by [`Stage::collect`].
    collected: u64,
    thread: Option<JoinHandle<()>>,
    /// Scratch buffer for a window's samples, for the caller building [`ClosedWindow`]s.
    pub(crate) samples: Vec<Sample>,
    window_ms: i64,
    /// Per partition, the last watermark queued (a window start).
    watermarks: FxHashMap<i32, i64>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("batched", &self.batch.items.len())
            .field("accounted", &self.accounted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Stage {
    /// Starts an evaluator for windows of `window_ms` on a new thread; `ready` is notified
    /// whenever transitions come back.
    pub(crate) fn start(window_ms: i64, ready: Arc<Notify>) -> Self {
        let (commands, commands_rx) = channel();
        let (replies_tx, replies) = channel();
        let (spent_tx, spent) = channel();
        let accounted = Arc::new(AtomicUsize::new(0));
        let shared = Arc::clone(&accounted);
        let thread = std::thread::Builder::new()
            .name("vigil-alerts".into())
            .spawn(move || {
                let mut ev = Evaluator::new(window_ms);
                run(
                    &mut ev,
                    &commands_rx,
                    &replies_tx,
                    &spent_tx,
                    &shared,
                    &ready,
                );
            })
            .expect("spawning the alert evaluation thread");
        Self {
            commands: Some(commands),
            replies: Mutex::new(replies),
            spent: Mutex::new(spent),
            batch: Batch::default(),
            accounted,
            sent: 0,
            received_upto: 0,
            received: Collected::default(),
            collected: 0,
            thread: Some(thread),
            samples: Vec::new(),
            window_ms: window_ms.max(1),
            watermarks: FxHashMap::default(),
        }
    }

    /// Queues a window's first emission for evaluation. Returns the number of the command
    /// that carries it: its transitions and state are in the output of a [`Stage::collect`]
    /// once [`Stage::collected`] reaches it.
    pub(crate) fn on_window(&mut self, w: &ClosedWindow<'_>) -> u64 {
        let b = &mut self.batch;
        let monitor = b.name(w.monitor_id);
        let region = b.name(w.region);
        if b.used == b.sketches.len() {
            b.sketches.push(w.sketch.clone());
        } else {
            b.sketches[b.used].clone_from(w.sketch);
        }
        let from = b.samples.len();
        b.samples.extend_from_slice(w.samples);
        b.items.push(Item::Window {
            partition: w.partition,
            monitor,
            region,
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            count: w.count,
            ok_count: w.ok_count,
            status: w.status,
            sketch: b.used,
            anomaly: w.anomaly,
            samples: from..b.samples.len(),
        });
        b.used += 1;
        let seq = self.sent + 1;
        if b.items.len() >= BATCH_ITEMS {
            self.send_batch();
        }
        seq
    }

    /// Queues `Evaluator::on_watermark(partition, at)` when the watermark entered a window it
    /// was not queued in yet: the evaluator runs the timers due by the start of the
    /// watermark's window (every timer is due at a window boundary), so a watermark moving
    /// within a window has nothing new to run.
    pub(crate) fn on_watermark(&mut self, partition: i32, at: i64) {
        let at = window_start(at, self.window_ms);
        let last = self.watermarks.entry(partition).or_insert(i64::MIN);
        if at > *last {
            *last = at;
            self.batch.items.push(Item::Watermark { partition, at });
        }
    }

    /// Sends what is queued, if anything.
    pub(crate) fn send_batch(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let mut next = unlocked(&mut self.spent).try_recv().unwrap_or_default();
        next.clear();
        let batch = std::mem::replace(&mut self.batch, next);
        self.command(Command::Batch(batch));
    }

    /// Replaces the rules (timers they move run at the next watermark).
    pub(crate) fn set_rules(&mut self, rules: RuleSet) {
        self.command(Command::SetRules(rules));
        self.watermarks.clear();
    }

    /// Restores `partition` from its changelog records (keys without the partition prefix).
    pub(crate) fn restore(&mut self, partition: i32, records: Vec<(String, Vec<u8>)>) {
        self.command(Command::Restore(partition, records));
        self.watermarks.remove(&partition);
    }

    pub(crate) fn drop_partition(&mut self, partition: i32) {
        self.command(Command::DropPartition(partition));
        self.watermarks.remove(&partition);
    }

    /// The transitions evaluated so far and not yet returned, without waiting (their
    /// changelog records wait for [`Stage::collect`]).
    pub(crate) fn fresh(&mut self) -> Vec<AlertTransition> {
        self.receive(false);
        std::mem::take(&mut self.received.transitions)
    }

    /// Hands out the transitions not yet returned and the changelog records of the commands
    /// evaluated so far: with `wait`, after waiting for every command sent (and the batch
    /// queued); without, of those done by now (the queued batch is sent, so it is under way).
    pub(crate) fn collect(&mut self, wait: bool) -> Collected {
        if wait {
            self.command(Command::Sync);
        } else {
            self.send_batch();
        }
        self.receive(wait);
        self.collected = self.received_upto;
        std::mem::take(&mut self.received)
    }

    /// Commands whose transitions and state the last [`Stage::collect`] handed out.
    pub(crate) fn collected(&self) -> u64 {
        self.collected
    }

    /// Takes the replies that arrived; with `wait`, until every command sent is done.
    fn receive(&mut self, wait: bool) {
        while self.received_upto < self.sent {
            let replies = unlocked(&mut self.replies);
            let done = if wait {
                match replies.recv() {
                    Ok(done) => done,
                    Err(_) => self.raise(),
                }
            } else {
                match replies.try_recv() {
                    Ok(done) => done,
                    Err(TryRecvError::Empty) => return,
                    Err(TryRecvError::Disconnected) => self.raise(),
                }
            };
            if let Some(upto) = done.upto {
                self.received_upto = upto;
            }
            self.received.transitions.extend(done.transitions);
            self.received.changes.extend(done.changes);
        }
    }

    /// The evaluator's accounted heap bytes (as of its last command).
    pub(crate) fn accounted_bytes(&self) -> usize {
        self.accounted.load(Ordering::Relaxed)
    }

    /// Sends a command after what is queued.
    fn command(&mut self, command: Command) {
        if !matches!(command, Command::Batch(_)) {
            self.send_batch();
        }
        let sent = self.commands.as_ref().map(|c| c.send(command));
        if !matches!(sent, Some(Ok(()))) {
            self.raise();
        }
        self.sent += 1;
    }

    /// The evaluating thread stopped: raises its panic here.
    fn raise(&mut self) -> ! {
        self.commands = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("the alert evaluation thread stopped"),
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            tracing::error!("The alert evaluation thread panicked.");
        }
    }
}

/// What `m` holds, reached without locking.
fn unlocked<T>(m: &mut Mutex<T>) -> &mut T {
    m.get_mut().unwrap_or_else(PoisonError::into_inner)
}

/// The evaluating thread: runs commands until the pipeline's side is dropped, answering with
/// [`Done`]s.
fn run(
    ev: &mut Evaluator,
    commands: &Receiver<Command>,
    replies: &Sender<Done>,
    spent: &Sender<Batch>,
    accounted: &AtomicUsize,
    ready: &Notify,
) {
    let mut out = Vec::new();
    let mut upto = 0;
    while let Ok(first) = commands.recv() {
        // Everything queued, its transitions out as they come; the changelog once idle (its
        // snapshots cost more than evaluating, and nothing waits for them).
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Batch(mut batch) => {
                    batch.evaluate(ev, &mut out);
                    batch.clear();
                    if spent.send(batch).is_err() {
                        return;
                    }
                }
                Command::SetRules(rules) => ev.set_rules(rules),
                Command::Restore(partition, records) => {
                    ev.drop_partition(partition);
                    for (key, value) in records {
                        if let Err(e) = ev.restore(partition, &key, &value) {
                            tracing::warn!(partition, key, error = %e, "Skipped undecodable alert state.");
                        }
                    }
                    ev.finish_restore(partition, &mut out);
                }
                Command::DropPartition(partition) => ev.drop_partition(partition),
                Command::Sync => {}
            }
            upto += 1;
            if !out.is_empty() {
                let next = Vec::with_capacity(out.len());
                let fresh = Done {
                    upto: None,
                    transitions: std::mem::replace(&mut out, next),
                    changes: Vec::new(),
                };
                if replies.send(fresh).is_err() {
                    return;
                }
                ready.notify_one();
            }
            next = commands.try_recv().ok();
        }
        accounted.store(ev.accounted_bytes(), Ordering::Relaxed);
        let done = Done {
            upto: Some(upto),
            transitions: Vec::new(),
            changes: ev.take_changes(),
        };
        if replies.send(done).is_err() {
            return;
        }
    }
}
